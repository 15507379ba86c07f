// Package s3blobs keeps the engine's images in an S3-compatible object
// store (AWS S3, MinIO, Ceph, R2, ...), so that every replica reads what
// any one stored. Objects are named by the SHA-256 of their bytes.
package s3blobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
)

// DefaultEndpoint is AWS S3's.
const DefaultEndpoint = "s3.amazonaws.com"

// Options says where the images go.
type Options struct {
	Bucket string
	// Prefix is put before every object's name ("picbot/"); may be empty.
	Prefix   string
	Endpoint string // host[:port]; empty: DefaultEndpoint
	Region   string // empty: asked of the server
	// Insecure talks plain HTTP (a local MinIO); the default is HTTPS.
	Insecure bool
	// PathStyle names the bucket in the path rather than the host name, as
	// most self-hosted servers need; false lets the client choose.
	PathStyle            bool
	AccessKey, SecretKey string
	SessionToken         string
	// MaxPixels bounds an image's width × height; 0: store.DefaultMaxPixels.
	MaxPixels int64
	// TempDir holds an image while it is checked and uploaded; empty: os.TempDir().
	TempDir string
	// PartSize is the size of one part of a multipart upload, which images
	// larger than it take; 0: the client's (16 MiB). S3's least is 5 MiB.
	PartSize uint64
	// Transport replaces the HTTP transport (tests); nil: the client's.
	Transport http.RoundTripper
}

// ParseURL reads s3://bucket/prefix?endpoint=host:port&region=r&tls=false&path_style=true.
// Credentials written as s3://KEY:SECRET@bucket/... are taken too, though
// the environment is the better place for them.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Options{}, errors.New("not a URL") // url's error would repeat the secret
	}
	if u.Scheme != "s3" {
		return Options{}, fmt.Errorf("scheme must be s3://, not %q", u.Scheme)
	}
	o := Options{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if o.Bucket == "" {
		return Options{}, errors.New("no bucket: write s3://BUCKET/prefix")
	}
	if o.Prefix != "" {
		o.Prefix += "/"
	}
	if u.User != nil {
		o.AccessKey = u.User.Username()
		o.SecretKey, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "tls", "path_style":
		default:
			return Options{}, fmt.Errorf("unknown parameter %q (known: endpoint, region, tls, path_style)", k)
		}
	}
	o.Endpoint = q.Get("endpoint")
	if strings.Contains(o.Endpoint, "/") {
		return Options{}, fmt.Errorf("endpoint must be host[:port], not %q", o.Endpoint)
	}
	o.Region = q.Get("region")
	tls := true
	for name, dst := range map[string]*bool{"tls": &tls, "path_style": &o.PathStyle} {
		v := q.Get(name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Options{}, fmt.Errorf("%s must be true or false, not %q", name, v)
		}
		*dst = b
	}
	o.Insecure = !tls
	return o, nil
}

// Blobs is the object store of images.
type Blobs struct {
	c         *minio.Client
	bucket    string
	prefix    string
	maxPixels int64
	tempDir   string
	partSize  uint64
}

var (
	_ engine.Blobs      = (*Blobs)(nil)
	_ store.BlobSweeper = (*Blobs)(nil)
)

// Open connects and checks that the bucket is there and readable with the
// credentials given, so that a mistake shows at start rather than at the
// first image.
func Open(ctx context.Context, o Options) (*Blobs, error) {
	if o.MaxPixels <= 0 {
		o.MaxPixels = store.DefaultMaxPixels
	}
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(o.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken),
		Secure:       !o.Insecure,
		Region:       o.Region,
		BucketLookup: lookup,
		Transport:    o.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", o.Endpoint, err)
	}
	b := &Blobs{c: c, bucket: o.Bucket, prefix: o.Prefix, maxPixels: o.MaxPixels, tempDir: o.TempDir, partSize: o.PartSize}
	ok, err := c.BucketExists(ctx, o.Bucket)
	if err == nil && !ok {
		return nil, fmt.Errorf("bucket %q does not exist at %s: create it first", o.Bucket, o.Endpoint)
	}
	if err == nil {
		// Existence may be visible to anyone: listing needs the credentials.
		for obj := range c.ListObjects(ctx, o.Bucket, minio.ListObjectsOptions{Prefix: o.Prefix, MaxKeys: 1}) {
			err = obj.Err
			break
		}
	}
	if err != nil {
		return nil, describe(err, o)
	}
	return b, nil
}

// describe says what a failure at start most likely means.
func describe(err error, o Options) error {
	r := minio.ToErrorResponse(err)
	switch r.Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken":
		return fmt.Errorf("%w: %s refused the credentials for bucket %q (%s)", ErrCredentials, o.Endpoint, o.Bucket, r.Code)
	case "NoSuchBucket":
		return fmt.Errorf("bucket %q does not exist at %s: create it first", o.Bucket, o.Endpoint)
	}
	return fmt.Errorf("object store %s, bucket %q: %w", o.Endpoint, o.Bucket, err)
}

// ErrCredentials is an object store's refusal of the access key or secret.
var ErrCredentials = errors.New("access denied")

func (b *Blobs) name(key string) string { return b.prefix + key }

func validKey(key string) bool {
	return len(key) == 64 && strings.Trim(key, "0123456789abcdef") == ""
}

// metaWidth and metaHeight keep an image's dimensions with it, for Stat.
const (
	metaWidth  = "Picbot-Width"
	metaHeight = "Picbot-Height"
)

// Put implements engine.Blobs. The image goes to a temporary file while it
// is hashed and checked (its name is its hash, known only at the end; S3
// takes no upload of unknown length without buffering a part in memory),
// then is uploaded from there, in parts when large. An image stored again is
// uploaded again: that renews its time, which retention's grace reads.
func (b *Blobs) Put(ctx context.Context, r io.Reader, limit int64) (engine.BlobInfo, error) {
	sp, err := store.SpoolImage(r, limit, b.maxPixels, b.tempDir)
	if err != nil {
		return engine.BlobInfo{}, err
	}
	defer sp.Close()
	info := sp.Info
	_, err = b.c.PutObject(ctx, b.bucket, b.name(info.Key), sp.File, info.Size, minio.PutObjectOptions{
		ContentType:  info.Mime,
		PartSize:     b.partSize,
		UserMetadata: map[string]string{metaWidth: strconv.Itoa(info.Width), metaHeight: strconv.Itoa(info.Height)},
	})
	if err != nil {
		return engine.BlobInfo{}, fmt.Errorf("upload image %s: %w", info.Key, err)
	}
	return info, nil
}

func notFound() error {
	return engine.Errorf(engine.ENOTFOUND, "No such image.", "没有这张图片。")
}

// Open implements engine.Blobs. The object is read as it is consumed.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if !validKey(key) {
		return nil, notFound()
	}
	obj, err := b.c.GetObject(ctx, b.bucket, b.name(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", key, err)
	}
	// The request goes out on the first call: make it now, so that a
	// missing image is ENOTFOUND here rather than a read error later.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, notFound()
		}
		return nil, fmt.Errorf("read image %s: %w", key, err)
	}
	return obj, nil
}

// Stat returns a stored image's description. ENOTFOUND if there is none.
func (b *Blobs) Stat(ctx context.Context, key string) (engine.BlobInfo, error) {
	if !validKey(key) {
		return engine.BlobInfo{}, notFound()
	}
	oi, err := b.c.StatObject(ctx, b.bucket, b.name(key), minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return engine.BlobInfo{}, notFound()
		}
		return engine.BlobInfo{}, fmt.Errorf("stat image %s: %w", key, err)
	}
	info := engine.BlobInfo{Key: key, Mime: oi.ContentType, Size: oi.Size}
	info.Width, _ = strconv.Atoi(oi.UserMetadata[metaWidth])
	info.Height, _ = strconv.Atoi(oi.UserMetadata[metaHeight])
	return info, nil
}

// each calls fn for every image object under the prefix; other objects
// there are not the bot's and are passed over.
func (b *Blobs) each(ctx context.Context, fn func(key string, oi minio.ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx) // stops the listing when fn fails
	defer cancel()
	for oi := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("list images: %w", oi.Err)
		}
		key := strings.TrimPrefix(oi.Key, b.prefix)
		if !validKey(key) {
			continue
		}
		if err := fn(key, oi); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// EachKey calls fn with the key of every stored image.
func (b *Blobs) EachKey(ctx context.Context, fn func(key string) error) error {
	return b.each(ctx, func(key string, _ minio.ObjectInfo) error { return fn(key) })
}

// Size lists the images and returns their total size and count.
func (b *Blobs) Size(ctx context.Context) (total int64, files int, err error) {
	err = b.each(ctx, func(_ string, oi minio.ObjectInfo) error {
		total += oi.Size
		files++
		return nil
	})
	return total, files, err
}

// Sweep implements store.BlobSweeper. S3 has no conditional delete that
// every server offers, so an object is looked at again just before it goes:
// one stored again since the listing is newer and stays. (A Put landing
// between that look and the delete is lost; the window is one round trip,
// and only for an image that no job named for two passes.)
func (b *Blobs) Sweep(ctx context.Context, olderThan time.Time, remove func(key string) bool) (int, int64, error) {
	n, size := 0, int64(0)
	err := b.each(ctx, func(key string, oi minio.ObjectInfo) error {
		if !oi.LastModified.Before(olderThan) || !remove(key) {
			return nil
		}
		now, err := b.c.StatObject(ctx, b.bucket, oi.Key, minio.StatObjectOptions{})
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil // another replica's pass took it
		}
		if err != nil {
			return fmt.Errorf("stat image %s: %w", key, err)
		}
		if !now.LastModified.Before(olderThan) {
			return nil
		}
		if err := b.c.RemoveObject(ctx, b.bucket, oi.Key, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("remove image %s: %w", key, err)
		}
		n++
		size += oi.Size
		return nil
	})
	return n, size, err
}
