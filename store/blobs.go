package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/picbot/picbot/engine"
	_ "golang.org/x/image/webp"
)

// Blobs keeps images as files named by the SHA-256 of their bytes, so the same
// image stored twice (a download repeated after a crash) takes one file.
type Blobs struct {
	dir       string
	maxPixels int64
}

var _ engine.Blobs = (*Blobs)(nil)

// DefaultMaxPixels bounds an image's width × height: 8192 × 8192.
const DefaultMaxPixels = 8192 * 8192

// OpenBlobs uses dir for images, refusing any larger than maxPixels (0: the default).
func OpenBlobs(dir string, maxPixels int64) (*Blobs, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	return &Blobs{dir: dir, maxPixels: maxPixels}, nil
}

var imageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// Put implements engine.Blobs. It streams r to a temporary file while hashing
// and checking it (SpoolImage), fsyncs, and renames.
func (b *Blobs) Put(ctx context.Context, r io.Reader, limit int64) (engine.BlobInfo, error) {
	sp, err := SpoolImage(r, limit, b.maxPixels, filepath.Join(b.dir, "tmp"))
	if err != nil {
		return engine.BlobInfo{}, err
	}
	defer sp.Close() // after a successful rename its removal fails harmlessly
	tmp := sp.File
	if err := tmp.Sync(); err != nil {
		return engine.BlobInfo{}, fmt.Errorf("sync blob: %w", err)
	}
	key := sp.Info.Key
	final := b.path(key)
	shard := filepath.Dir(final)
	_, statErr := os.Stat(shard)
	if err := os.MkdirAll(shard, 0o700); err != nil {
		return engine.BlobInfo{}, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return engine.BlobInfo{}, fmt.Errorf("store blob: %w", err)
	}
	// The job records the key once Put returns, so the file's name must be
	// on disk by then: fsync the directory that holds it, and its parent
	// when the shard directory is new.
	if err := syncDir(shard); err != nil {
		return engine.BlobInfo{}, fmt.Errorf("sync blob directory: %w", err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := syncDir(b.dir); err != nil {
			return engine.BlobInfo{}, fmt.Errorf("sync blob directory: %w", err)
		}
	}
	return sp.Info, nil
}

// Spooled is an image checked and written to a temporary file, read back
// from its start; Close removes the file.
type Spooled struct {
	File *os.File
	Info engine.BlobInfo
}

// Close closes and removes the temporary file.
func (s *Spooled) Close() error {
	err := s.File.Close()
	if rerr := os.Remove(s.File.Name()); err == nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	return err
}

// SpoolImage streams r to a new file in dir while hashing it, stops reading
// past limit, and checks the content is an image of at most maxPixels from
// its header alone (never a full decode). Every image store shares it, so
// they accept and refuse the same images, and none holds one in memory.
func SpoolImage(r io.Reader, limit, maxPixels int64, dir string) (*Spooled, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, limit+1), 4096)
	head, _ := br.Peek(512)
	mime := http.DetectContentType(head)
	if !imageTypes[mime] {
		return nil, engine.Errorf(engine.EINVALID, "That file is not a picture (PNG, JPEG, GIF or WebP).", "这个文件不是图片（支持 PNG、JPEG、GIF、WebP）。")
	}
	tmp, err := os.CreateTemp(dir, "put-*")
	if err != nil {
		return nil, fmt.Errorf("blob temp file: %w", err)
	}
	sp := &Spooled{File: tmp}
	ok := false
	defer func() {
		if !ok {
			sp.Close()
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), br)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	if n > limit {
		return nil, engine.Errorf(engine.EINVALID, "The picture is too large: more than %d MB.", "图片太大：超过 %d MB。", limit>>20)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cfg, _, err := image.DecodeConfig(bufio.NewReader(tmp))
	if err != nil {
		return nil, engine.Wrap(engine.EINVALID, err, "The picture could not be read.", "无法读取这张图片。")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, engine.Errorf(engine.EINVALID, "The picture's dimensions (%dx%d) are too large: at most %d pixels.", "图片尺寸（%dx%d）太大：最多 %d 像素。", cfg.Width, cfg.Height, maxPixels)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	sp.Info = engine.BlobInfo{Key: hex.EncodeToString(h.Sum(nil)), Mime: mime, Size: n, Width: cfg.Width, Height: cfg.Height}
	ok = true
	return sp, nil
}

// Open implements engine.Blobs. A file is read at once: ctx is looked at
// only before it is opened.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		return nil, engine.Errorf(engine.ENOTFOUND, "No such image.", "没有这张图片。")
	}
	f, err := os.Open(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, engine.Errorf(engine.ENOTFOUND, "No such image.", "没有这张图片。")
	}
	return f, err
}

// syncDir fsyncs a directory, so that a rename into it survives a power
// cut. A variable so that a test can see it called.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (b *Blobs) path(key string) string {
	return filepath.Join(b.dir, key[:2], key)
}
