package store_test

import (
	"path/filepath"
	"testing"

	"github.com/picbot/picbot/engine"
	"github.com/picbot/picbot/store"
	"github.com/picbot/picbot/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (storetest.Store, engine.Blobs) {
		dir := t.TempDir()
		db := mustOpen(t, filepath.Join(dir, "db"))
		t.Cleanup(func() { db.Close() })
		blobs, err := store.OpenBlobs(filepath.Join(dir, "blobs"), 0)
		if err != nil {
			t.Fatal(err)
		}
		return db, blobs
	})
}
