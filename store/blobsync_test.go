package store

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Put returns a key only once the file and its name are durable: the file is
// fsynced before the rename, and the directory holding the new name after it
// (its parent too when the shard directory is new).
func TestPutSyncsDirectories(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenBlobs(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var synced []string
	old := syncDir
	syncDir = func(d string) error {
		synced = append(synced, d)
		return old(d)
	}
	t.Cleanup(func() { syncDir = old })

	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	info, err := b.Put(context.Background(), bytes.NewReader(buf.Bytes()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	shard := filepath.Dir(b.path(info.Key))
	if _, err := os.Stat(b.path(info.Key)); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 2 || synced[0] != shard || synced[1] != dir {
		t.Fatalf("directories synced = %q, want [%s %s]", synced, shard, dir)
	}
	synced = nil
	if _, err := b.Put(context.Background(), bytes.NewReader(buf.Bytes()), 1<<20); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != shard {
		t.Fatalf("second put synced %q, want [%s]", synced, shard)
	}
}
