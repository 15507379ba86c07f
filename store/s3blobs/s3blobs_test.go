package s3blobs_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
	"github.com/picbot/picbot/store/s3blobs"
	"github.com/picbot/picbot/store/s3blobs/s3fake"
	"github.com/picbot/picbot/store/storetest"
)

func options(t *testing.T, fake *s3fake.Server, prefix string) s3blobs.Options {
	t.Helper()
	o, err := s3blobs.ParseURL(fake.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	o.AccessKey, o.SecretKey = s3fake.AccessKey, s3fake.SecretKey
	o.TempDir = t.TempDir()
	return o
}

func open(t *testing.T, o s3blobs.Options) *s3blobs.Blobs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := s3blobs.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContract: the image contract every store passes, against the fake.
func TestContract(t *testing.T) {
	storetest.RunBlobs(t, func(t *testing.T) engine.Blobs {
		fake := s3fake.Start(t, "contract")
		return open(t, options(t, fake, "picbot"))
	})
}

func noisePNG(t testing.TB, w, h int, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.Uint32())
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tinyPNG(t testing.TB, shade uint8) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range img.Pix {
		img.Pix[i] = shade
	}
	img.Set(0, 0, color.Gray{Y: shade + 1})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPutNamesObjectByHash: the object is under the prefix, named by the
// image's SHA-256, with its type; nothing is left in the temporary directory.
func TestPutNamesObjectByHash(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.Start(t, "named")
	o := options(t, fake, "a/b")
	b := open(t, o)
	img := tinyPNG(t, 40)
	info, err := b.Put(ctx, bytes.NewReader(img), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := fake.Objects(t, ""); len(got) != 1 || got[0] != "a/b/"+info.Key {
		t.Fatalf("objects %v, want [a/b/%s]", got, info.Key)
	}
	if !bytes.Equal(fake.Get(t, "a/b/"+info.Key), img) {
		t.Fatal("object's bytes differ from the image")
	}
	st, err := b.Stat(ctx, info.Key)
	if err != nil || st != info {
		t.Fatalf("Stat %+v %v, want %+v", st, err, info)
	}
	if left, _ := filepath.Glob(filepath.Join(o.TempDir, "*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if _, err := b.Put(ctx, strings.NewReader("not a picture at all"), 1<<20); engine.ErrorCode(err) != engine.EINVALID {
		t.Fatalf("text: %v, want EINVALID", err)
	}
	if got := fake.Objects(t, ""); len(got) != 1 {
		t.Fatalf("a refused put left objects: %v", got)
	}
}

// TestMultipart: an image larger than a part goes up in parts and reads
// back whole.
func TestMultipart(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 6 MB")
	}
	ctx := context.Background()
	fake := s3fake.Start(t, "multipart")
	o := options(t, fake, "")
	o.PartSize = 5 << 20
	b := open(t, o)
	img := noisePNG(t, 1300, 1200, 7) // ~6.2 MB: two parts
	if len(img) <= 5<<20 {
		t.Fatalf("test image only %d bytes", len(img))
	}
	posts := fake.Requests("POST")
	info, err := b.Put(ctx, bytes.NewReader(img), 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	// Initiate and complete are POSTs; a single PUT has none.
	if n := fake.Requests("POST") - posts; n < 2 {
		t.Fatalf("%d POST requests: not a multipart upload", n)
	}
	rc, err := b.Open(context.Background(), info.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, img) {
		t.Fatalf("read back %d bytes (%v), want %d", len(got), err, len(img))
	}
}

func TestOpenRefusesWrongBucketAndKey(t *testing.T) {
	fake := s3fake.Start(t, "real")
	ctx := context.Background()

	o := options(t, fake, "")
	o.Bucket = "missing"
	if _, err := s3blobs.Open(ctx, o); err == nil || !strings.Contains(err.Error(), `bucket "missing" does not exist`) {
		t.Errorf("wrong bucket: %v", err)
	}
	o = options(t, fake, "")
	o.AccessKey = "WRONGKEY"
	_, err := s3blobs.Open(ctx, o)
	if !errors.Is(err, s3blobs.ErrCredentials) {
		t.Errorf("wrong key: %v, want ErrCredentials", err)
	}
	if err != nil && strings.Contains(err.Error(), o.SecretKey) {
		t.Errorf("error shows the secret: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	o, err := s3blobs.ParseURL("s3://AK:SK@pics/bot/images/?endpoint=minio.local:9000&region=eu-1&tls=false&path_style=true")
	if err != nil {
		t.Fatal(err)
	}
	want := s3blobs.Options{Bucket: "pics", Prefix: "bot/images/", Endpoint: "minio.local:9000", Region: "eu-1",
		Insecure: true, PathStyle: true, AccessKey: "AK", SecretKey: "SK"}
	if o != want {
		t.Errorf("got %+v\nwant %+v", o, want)
	}
	o, err = s3blobs.ParseURL("s3://pics")
	if err != nil || o != (s3blobs.Options{Bucket: "pics"}) {
		t.Errorf("plain: %+v %v", o, err)
	}
	for _, bad := range []string{"http://pics/x", "s3:///prefix", "s3://pics?tls=maybe", "s3://pics?endpoint=http://h:1", "s3://pics?secret=x"} {
		if _, err := s3blobs.ParseURL(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if _, err := s3blobs.ParseURL("s3://AK:TOPSECRET@pics\x7f"); err == nil || strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("unparsable URL: %v (must not repeat the secret)", err)
	}
}

// TestSweep: only old images that remove names go; one stored again after
// the listing (a Put racing the pass) stays; Size counts what is left.
func TestSweep(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.Start(t, "sweep")
	b := open(t, options(t, fake, "p"))
	put := func(img []byte) engine.BlobInfo {
		info, err := b.Put(ctx, bytes.NewReader(img), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	fake.Clock.Shift(-2 * time.Hour)
	keep, drop, racing := put(tinyPNG(t, 10)), put(tinyPNG(t, 20)), tinyPNG(t, 30)
	racingInfo := put(racing)
	fake.Clock.Shift(0)
	fresh := put(tinyPNG(t, 50))
	n, size, err := b.Sweep(ctx, time.Now().Add(-time.Hour), func(key string) bool {
		switch key {
		case keep.Key:
			return false
		case racingInfo.Key:
			put(racing) // stored again between the listing and the delete
		case fresh.Key:
			t.Errorf("remove asked about %s, stored within the grace", key)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || size != drop.Size {
		t.Errorf("swept %d (%d bytes), want 1 (%d)", n, size, drop.Size)
	}
	for _, k := range []string{keep.Key, racingInfo.Key, fresh.Key} {
		if _, err := b.Open(context.Background(), k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if _, err := b.Open(context.Background(), drop.Key); engine.ErrorCode(err) != engine.ENOTFOUND {
		t.Errorf("swept image: %v, want ENOTFOUND", err)
	}
	total, files, err := b.Size(ctx)
	if err != nil || files != 3 || total != keep.Size+racingInfo.Size+fresh.Size {
		t.Errorf("Size %d bytes in %d (%v)", total, files, err)
	}
}

// TestPrunerBolt: the bbolt store's retention prunes images in the bucket
// as it does files: unreferenced in two passes in a row, then gone.
func TestPrunerBolt(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.Start(t, "prune")
	b := open(t, options(t, fake, ""))
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fake.Clock.Shift(-2 * time.Hour)
	kept, err := b.Put(ctx, bytes.NewReader(tinyPNG(t, 1)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := b.Put(ctx, bytes.NewReader(tinyPNG(t, 2)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	fake.Clock.Shift(0)
	now := time.Now()
	j := &engine.Job{ID: "j", Owner: engine.UserRef{Platform: "t", ID: "u"}, State: engine.StateDelivered,
		CreatedAt: now, UpdatedAt: now, FinishedAt: now, Results: []engine.Result{{Blob: kept.Key}}}
	if err := db.CreateJob(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	p := &store.Pruner{DB: db, Blobs: b, Retention: store.DefaultRetention()}
	for pass := 1; pass <= 2; pass++ {
		st, err := p.Pass(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Open(context.Background(), orphan.Key)
		if gone := engine.ErrorCode(err) == engine.ENOTFOUND; gone != (pass == 2) || st.Blobs != pass-1 {
			t.Fatalf("pass %d: orphan gone %v, %d swept", pass, gone, st.Blobs)
		}
	}
	if _, err := b.Open(context.Background(), kept.Key); err != nil {
		t.Errorf("referenced image: %v", err)
	}
}

// TestTwoClientsShare: what one replica's store puts, another's opens.
func TestTwoClientsShare(t *testing.T) {
	ctx := context.Background()
	fake := s3fake.Start(t, "shared")
	a, b := open(t, options(t, fake, "x")), open(t, options(t, fake, "x"))
	img := tinyPNG(t, 77)
	info, err := a.Put(ctx, bytes.NewReader(img), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.Open(context.Background(), info.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, img) {
		t.Fatal("the other client read different bytes")
	}
}
