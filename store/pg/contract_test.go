package pgstore_test

import (
	"context"
	"testing"

	"github.com/picbot/picbot/engine"
	pgstore "github.com/picbot/picbot/store/pg"
	"github.com/picbot/picbot/store/pg/pgtest"
	"github.com/picbot/picbot/store/storetest"
)

func mustOpen(t *testing.T, url string, opt pgstore.Options) *pgstore.DB {
	t.Helper()
	db, err := pgstore.Open(context.Background(), url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (storetest.Store, engine.Blobs) {
		db := mustOpen(t, pgtest.URL(t), pgstore.Options{})
		return db, db.Blobs(0)
	})
}

func TestContractCommitCuts(t *testing.T) {
	cuts := map[storetest.CommitCut]pgtest.Cut{
		storetest.CutBeforeCommit:   pgtest.CutBeforeCommit,
		storetest.CutPartition:      pgtest.CutPartition,
		storetest.CutAfterCommit:    pgtest.CutAfterCommit,
		storetest.CutPartitionEarly: pgtest.CutPartitionAfterBegin,
	}
	storetest.RunCommitCuts(t, func(t *testing.T) (storetest.Store, func(storetest.CommitCut) func() bool) {
		p, u := pgtest.NewProxy(t, pgtest.URL(t))
		db := mustOpen(t, u, pgstore.Options{})
		return db, func(where storetest.CommitCut) func() bool {
			p.Arm(cuts[where])
			return func() bool {
				select {
				case <-p.Fired():
					return true
				default:
					return false
				}
			}
		}
	})
}
