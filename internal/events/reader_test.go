package events

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenlease/tokenlease/internal/testdb"
)

// beforeHeldBack is a tracer of the reader's connection that runs f once,
// just before the reader's first look at whether rows are held back.
type beforeHeldBack struct {
	*reader
	f func()
}

func (b *beforeHeldBack) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if b.f != nil && strings.Contains(data.SQL, "EventsHeldBack") {
		f := b.f
		b.f = nil
		f()
	}
	return b.reader.TraceQueryStart(ctx, conn, data)
}

// A read finds nothing because an older transaction holds the log back, and
// that transaction ends before the reader asks whether rows are held back.
// The row is still unread: the reader must report it held back (and so read
// again soon) rather than wait for the next ring or poll, which may never
// come (the ring that announced the row has been spent on the read).
func TestReaderHeldBackUntilRowsAreRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testdb.NewPool(t)
	if _, err := pool.Exec(ctx, "SELECT audit_name_id('test')"); err != nil {
		t.Fatal(err)
	}
	hub := NewHub(16)
	tracer := &beforeHeldBack{}
	connConfig := readerConnConfig(pool.Config().ConnConfig)
	connConfig.Tracer = tracer
	dial := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, connConfig) }
	r := newReader(dial, hub, 100, time.Hour, time.Millisecond, slog.Default())
	tracer.reader = r
	defer r.disconnect()
	cursor, ok := r.head(ctx)
	if !ok {
		t.Fatal("no head")
	}
	hub.Start(cursor)
	sub, _, err := hub.Subscribe(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	older, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := older.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO token_events (pool_id, kind, token_id, token, pod)
		VALUES (1, 'generated', 1, 'held', 'test')`); err != nil {
		t.Fatal(err)
	}
	tracer.f = func() {
		if err := older.Commit(ctx); err != nil {
			t.Error(err)
		}
	}

	n, _, held, _, err := r.catchUp(ctx, &cursor, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || tracer.f != nil {
		t.Fatalf("the first read delivered %d rows (the older transaction ended: %t), want none while it ran", n, tracer.f == nil)
	}
	if !held {
		t.Fatal("a row the read could not see is unread, yet the reader does not count it held back")
	}
	// Transactions of other tests may hold the horizon back for a while
	// longer: until the row is read every read must count it held back.
	for deadline := time.Now().Add(10 * time.Second); n == 0; {
		if !held || time.Now().After(deadline) {
			t.Fatalf("the row is unread, yet held back: %t", held)
		}
		if n, _, held, _, err = r.catchUp(ctx, &cursor, true); err != nil {
			t.Fatal(err)
		}
	}
	if n != 1 {
		t.Fatalf("the reads delivered %d rows, want 1", n)
	}
	if ev := mustNext(t, sub); ev.Token != "held" {
		t.Fatalf("got %q", ev.Token)
	}
}
