package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
)

// TestBlobReadEndsWithContext: an image is read under its caller's
// context. With every pool connection taken (the pool busy with other
// callers), an Open, and a Read that needs the next chunk, wait for one
// only until that context ends: before, they read under
// context.Background() and waited with no bound, inside a post lane's
// hold, while every delivery behind it waited.
func TestBlobReadEndsWithContext(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t, pgtest.URL(t), pgstore.Options{MaxConns: 2})
	blobs := db.Blobs(0)
	info, err := blobs.Put(ctx, bytes.NewReader(noisePNG(t, 400, 400)), 10<<20)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size <= pgstore.ChunkSize {
		t.Fatalf("image of %d bytes: want more than a chunk (%d)", info.Size, pgstore.ChunkSize)
	}
	// ends runs f under a context cancelled once f has begun, and wants it
	// to end with that context's error.
	ends := func(t *testing.T, what string, f func(ctx context.Context) error) {
		t.Helper()
		release, err := db.HoldConnsForTest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f(cctx) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with the pool busy and its context cancelled: %v, want context.Canceled", what, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s with the pool busy: still waiting for a connection 10 s after its context was cancelled", what)
		}
	}
	t.Run("Open", func(t *testing.T) {
		ends(t, "Open", func(ctx context.Context) error {
			rc, err := blobs.Open(ctx, info.Key)
			if err == nil {
				rc.Close()
			}
			return err
		})
	})
	t.Run("Read", func(t *testing.T) {
		rctx, cancelRead := context.WithCancel(ctx)
		defer cancelRead()
		rc, err := blobs.Open(rctx, info.Key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, pgstore.ChunkSize)); err != nil { // the first chunk
			t.Fatal(err)
		}
		ends(t, "Read of the next chunk", func(ctx context.Context) error {
			defer context.AfterFunc(ctx, cancelRead)() // the reader's context is the Open's
			_, err := rc.Read(make([]byte, 1))
			return err
		})
	})
}

// noisePNG is a picture that does not compress: w×h×4 bytes and a little more.
func noisePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(uint64(w), uint64(h)))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.Uint32())
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	if err := enc.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
