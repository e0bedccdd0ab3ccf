package store_test

import (
	"testing"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay/store"
)

// openStore opens a real outbox in a temporary directory and the adapter over it; both are
// closed when the test ends.
func openStore(t *testing.T) (*buffer.Store, *store.Store) {
	t.Helper()
	b, err := buffer.Open(t.TempDir(), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, store.New(b, nil)
}
