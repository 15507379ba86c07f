package pgstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // decoders for DecodeConfig
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/picbot/picbot/engine"
	_ "golang.org/x/image/webp"
)

// ChunkSize is the bytes of an image kept in one row: an image is written
// and read a chunk at a time, never held whole in memory.
const ChunkSize = 256 << 10

// DefaultMaxPixels bounds an image's width × height, as the file store does.
const DefaultMaxPixels = 8192 * 8192

// Blobs keeps images in PostgreSQL, content-addressed by the SHA-256 of
// their bytes, so that every replica reads what any one stored.
type Blobs struct {
	db        *DB
	maxPixels int64
}

var _ engine.Blobs = (*Blobs)(nil)

// Blobs returns the image store in db; maxPixels 0 is the default.
func (s *DB) Blobs(maxPixels int64) *Blobs {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	return &Blobs{db: s, maxPixels: maxPixels}
}

var imageTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// headKeep is the start of an image kept in memory for its header check.
const headKeep = 1 << 20

// Put implements engine.Blobs. It streams r into chunk rows under a
// temporary key while hashing, stops past limit, checks the header, and
// renames the chunks to the hash in the same transaction: a crash leaves
// nothing, and an image stored twice is kept once.
func (b *Blobs) Put(ctx context.Context, r io.Reader, limit int64) (engine.BlobInfo, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, limit+1), 4096)
	peek, _ := br.Peek(512)
	mime := http.DetectContentType(peek)
	if !imageTypes[mime] {
		return engine.BlobInfo{}, engine.Errorf(engine.EINVALID, "That file is not a picture (PNG, JPEG, GIF or WebP).", "这个文件不是图片（支持 PNG、JPEG、GIF、WebP）。")
	}
	var tmpb [12]byte
	_, _ = rand.Read(tmpb[:])
	tmp := "tmp-" + hex.EncodeToString(tmpb[:])
	var info engine.BlobInfo
	err := pgx.BeginFunc(ctx, b.db.pool, func(tx pgx.Tx) error {
		h := sha256.New()
		var head bytes.Buffer
		buf := make([]byte, ChunkSize)
		var n int64
		for seq := 0; ; seq++ {
			m, rerr := io.ReadFull(br, buf)
			if m > 0 {
				n += int64(m)
				if n > limit {
					return engine.Errorf(engine.EINVALID, "The picture is too large: more than %d MB.", "图片太大：超过 %d MB。", limit>>20)
				}
				h.Write(buf[:m])
				if head.Len() < headKeep {
					head.Write(buf[:min(m, headKeep-head.Len())])
				}
				if _, err := tx.Exec(ctx, `INSERT INTO picbot_blob_chunks (key, seq, data) VALUES ($1, $2, $3)`, tmp, seq, buf[:m]); err != nil {
					return err
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read image: %w", rerr)
			}
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(head.Bytes()))
		if err != nil {
			return engine.Wrap(engine.EINVALID, err, "The picture could not be read.", "无法读取这张图片。")
		}
		if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > b.maxPixels {
			return engine.Errorf(engine.EINVALID, "The picture's dimensions (%dx%d) are too large: at most %d pixels.", "图片尺寸（%dx%d）太大：最多 %d 像素。", cfg.Width, cfg.Height, b.maxPixels)
		}
		key := hex.EncodeToString(h.Sum(nil))
		info = engine.BlobInfo{Key: key, Mime: mime, Size: n, Width: cfg.Width, Height: cfg.Height}
		// The row first: a concurrent Put of the same image waits here for
		// the other to commit, then finds it stored.
		tag, err := tx.Exec(ctx, `INSERT INTO picbot_blobs (key, mime, size, width, height) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (key) DO NOTHING`, key, mime, n, cfg.Width, cfg.Height)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errStored
		}
		_, err = tx.Exec(ctx, `UPDATE picbot_blob_chunks SET key = $1 WHERE key = $2`, key, tmp)
		return err
	})
	if errors.Is(err, errStored) {
		return info, nil
	}
	if err != nil {
		return engine.BlobInfo{}, wrap(err)
	}
	return info, nil
}

// errStored ends a Put whose image is stored already: its chunks roll back.
var errStored = errors.New("image stored already")

// Open implements engine.Blobs. The reader fetches one chunk at a time,
// under ctx: a wait for a pool connection (the pool busy, the database
// slow) ends with it, as within a post lane's hold it must.
func (b *Blobs) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		return nil, engine.Errorf(engine.ENOTFOUND, "No such image.", "没有这张图片。")
	}
	var size int64
	err := b.db.pool.QueryRow(ctx, `SELECT size FROM picbot_blobs WHERE key = $1`, key).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, engine.Errorf(engine.ENOTFOUND, "No such image.", "没有这张图片。")
	}
	if err != nil {
		return nil, wrap(err)
	}
	return &chunkReader{ctx: ctx, db: b.db, key: key, left: size}, nil
}

// Stat returns a stored image's description. ENOTFOUND if there is none.
func (b *Blobs) Stat(ctx context.Context, key string) (engine.BlobInfo, error) {
	info := engine.BlobInfo{Key: key}
	err := b.db.pool.QueryRow(ctx, `SELECT mime, size, width, height FROM picbot_blobs WHERE key = $1`, key).
		Scan(&info.Mime, &info.Size, &info.Width, &info.Height)
	if errors.Is(err, pgx.ErrNoRows) {
		return info, engine.Errorf(engine.ENOTFOUND, "No such image.", "没有这张图片。")
	}
	return info, wrap(err)
}

// Size returns the stored images' total size and count.
func (b *Blobs) Size(ctx context.Context) (total int64, files int, err error) {
	err = b.db.pool.QueryRow(ctx, `SELECT coalesce(sum(size), 0), count(*) FROM picbot_blobs`).Scan(&total, &files)
	return total, files, wrap(err)
}

type chunkReader struct {
	ctx  context.Context // the Open's: a reader lives within its caller's call
	db   *DB
	key  string
	seq  int
	buf  []byte
	left int64
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.left <= 0 {
			return 0, io.EOF
		}
		err := r.db.pool.QueryRow(r.ctx, `SELECT data FROM picbot_blob_chunks WHERE key = $1 AND seq = $2`, r.key, r.seq).Scan(&r.buf)
		if err != nil {
			return 0, fmt.Errorf("read image %s chunk %d: %w", r.key, r.seq, err)
		}
		r.seq++
		r.left -= int64(len(r.buf))
		if len(r.buf) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error { r.buf, r.left = nil, 0; return nil }
