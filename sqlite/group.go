package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/hookd-dev/hookd"
)

// maxGroupRows bounds the rows (events published, deliveries claimed or
// completed) of one group commit, so that a group does not hold the one
// write connection much longer than the largest single batch
// (hookd.MaxBatchEvents) would.
const maxGroupRows = 2 * hookd.MaxBatchEvents

// writeGroup commits concurrent writes of the hot paths together:
// PublishEvents from API clients, ClaimDeliveries and CompleteAttempts
// from the dispatcher. SQLite has one writer, so they queue for the write
// connection anyway; running those that queued up in one transaction pays
// for one BEGIN IMMEDIATE and COMMIT, and writes each page they share (the
// tails of the tables and indexes, the delivery counts) to the WAL once,
// instead of once per call.
//
// Each write of a group runs in a savepoint of its own, in arrival order,
// so that it sees what the writes before it did, as it would one
// transaction later, and a write that fails (an unknown organization) is
// undone alone. No call returns before the transaction holding its write
// committed, so an event is durable before its 202 (SPEC §6) and a lease
// exists before its job is attempted.
//
// There is no goroutine of its own: the first call to find the group idle
// leads it, committing its own write with whatever queued meanwhile; calls
// that arrive while it commits queue up, and when the commit is done the
// first of them takes the lead for the next group.
type writeGroup struct {
	mu    sync.Mutex
	busy  bool       // a leader is committing; writes queue
	queue []*groupOp // writes waiting, in arrival order
}

// groupOp is one write waiting in a writeGroup.
type groupOp struct {
	ctx  context.Context
	name string // for errors: "publish events"
	rows int    // its share of maxGroupRows
	fn   func(ctx context.Context, tx *sql.Tx) error
	// undo, when not nil, is called when what fn did was rolled back, fn
	// having succeeded or not.
	undo func()

	// turn is sent to when done is set, or when the write is to lead the
	// next group; buffered, since a leader's own write is sent to when
	// nobody waits on it.
	turn chan struct{}
	done bool  // set by the leader of the write's group before it sends to turn
	err  error // fn's error, or the group's
}

// run runs fn in the next group commit and returns once that committed
// or failed: fn's error (wrapped with name unless a *hookd.Error), or the
// transaction's. fn gets a context with ctx's values but not its end: an
// interrupted statement could roll back the whole transaction, others'
// writes included. rows is the write's size, to bound groups; undo, when
// not nil, is called when fn's writes were rolled back.
func (g *writeGroup) run(ctx context.Context, db *DB, name string, rows int, fn func(ctx context.Context, tx *sql.Tx) error, undo func()) error {
	op := &groupOp{ctx: ctx, name: name, rows: rows, fn: fn, undo: undo, turn: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, op)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		// Not abandoned when ctx ends: the write may be in the transaction
		// being committed, and its caller must learn whether it was.
		<-op.turn
	}
	if !op.done {
		g.commitNext(db)
	}
	return op.err
}

// commitNext commits the writes at the head of the queue (the leader's
// first among them) in one transaction, then hands the lead to the next
// write queued, or leaves the group idle.
func (g *writeGroup) commitNext(db *DB) {
	g.mu.Lock()
	n, rows := 0, 0
	for n < len(g.queue) && (n == 0 || rows+g.queue[n].rows <= maxGroupRows) {
		rows += g.queue[n].rows
		n++
	}
	ops := append([]*groupOp(nil), g.queue[:n]...)
	g.queue = g.queue[n:]
	g.mu.Unlock()

	// A caller that went away before the transaction began is left out;
	// one that goes away during it still has its write committed, as a
	// transaction of its own would.
	live := ops[:0:0]
	for _, op := range ops {
		if err := op.ctx.Err(); err != nil {
			op.err = err
			continue
		}
		live = append(live, op)
	}
	if len(live) > 0 {
		db.commitGroup(live)
	}

	g.mu.Lock()
	var next *groupOp
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, op := range ops {
		op.done = true
		op.turn <- struct{}{}
	}
	if next != nil {
		next.turn <- struct{}{}
	}
}

// Savepoint statements of a group, prepared at Open with the hot queries.
const (
	savepointQuery        = `SAVEPOINT group_write`
	rollbackToQuery       = `ROLLBACK TO group_write`
	releaseSavepointQuery = `RELEASE group_write`
)

// commitGroup runs ops in one write transaction, each in a savepoint when
// there are several, and sets each one's err.
func (db *DB) commitGroup(ops []*groupOp) {
	// The leader's context ends with its own request; the transaction
	// holds the others' writes too and must not end with it.
	ctx := context.WithoutCancel(ops[0].ctx)
	exec := func(tx *sql.Tx, query string) error {
		s, err := db.stmt(ctx, tx, query)
		if err != nil {
			return err
		}
		_, err = s.ExecContext(ctx)
		return err
	}
	name := ops[0].name
	if len(ops) > 1 {
		name = "group of writes"
	}
	err := db.write(ctx, name, func(tx *sql.Tx) error {
		if len(ops) == 1 {
			return ops[0].fn(ctx, tx)
		}
		for _, op := range ops {
			if err := exec(tx, savepointQuery); err != nil {
				return err
			}
			if op.err = wrap(op.name, op.fn(ctx, tx)); op.err != nil {
				if err := exec(tx, rollbackToQuery); err != nil {
					return err
				}
			}
			if err := exec(tx, releaseSavepointQuery); err != nil {
				return err
			}
		}
		return nil
	})
	if len(ops) == 1 {
		ops[0].err = err // wrapped by write with the op's name
	}
	for _, op := range ops {
		if op.err == nil {
			op.err = err
		}
		if op.err != nil && op.undo != nil {
			op.undo()
		}
	}
}
