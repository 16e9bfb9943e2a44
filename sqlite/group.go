package sqlite

import (
	"context"
	"sync"

	"github.com/hookd-dev/hookd"
)

// maxGroupEvents bounds the events of one group commit, so that a group
// does not hold the one write connection much longer than the largest
// single batch (hookd.MaxBatchEvents) would, while claims and attempt
// results wait for it.
const maxGroupEvents = 2 * hookd.MaxBatchEvents

// publishGroup commits concurrent PublishEvents calls together. SQLite has
// one writer, so concurrent publishes queue for the write connection
// anyway; committing those that queued up in one transaction pays for one
// BEGIN and COMMIT, and writes each page they share (the tails of the
// tables and indexes) to the WAL once, instead of once per call.
//
// There is no goroutine of its own: the first call to find the group idle
// leads it, committing its own call with whatever queued meanwhile; calls
// that arrive while it commits queue up, and when the commit is done the
// first of them takes the lead for the next group. No call returns before
// the transaction holding its events committed, so SPEC §6's "durable
// before the 202" holds for every call of a group.
type publishGroup struct {
	mu    sync.Mutex
	busy  bool           // a leader is committing; calls queue
	queue []*publishCall // calls waiting, in arrival order
}

// publishCall is one PublishEvents call waiting in a publishGroup.
type publishCall struct {
	ctx    context.Context
	events []*hookd.Event
	// turn is sent to when done is set, or when the call is to lead the
	// next group; buffered, since a leader's own call is sent to when
	// nobody waits on it.
	turn chan struct{}

	// Set by the leader of the call's group before it closes turn.
	done       bool
	results    []hookd.PublishResult
	deliveries int // created by the call
	err        error
}

// publish publishes events as part of the next group commit and returns
// their results once it committed.
func (g *publishGroup) publish(ctx context.Context, db *DB, events []*hookd.Event) ([]hookd.PublishResult, error) {
	call := &publishCall{ctx: ctx, events: events, turn: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, call)
	lead := !g.busy
	g.busy = true
	g.mu.Unlock()
	if !lead {
		// Not abandoned when ctx ends: the call may be in the transaction
		// being committed, and its caller must learn whether it was.
		<-call.turn
	}
	if !call.done {
		g.commitNext(db)
	}
	return call.results, call.err
}

// commitNext commits the calls at the head of the queue (the leader's
// first among them) in one transaction, then hands the lead to the next
// call queued, or leaves the group idle.
func (g *publishGroup) commitNext(db *DB) {
	g.mu.Lock()
	n, events := 0, 0
	for n < len(g.queue) && (n == 0 || events+len(g.queue[n].events) <= maxGroupEvents) {
		events += len(g.queue[n].events)
		n++
	}
	calls := append([]*publishCall(nil), g.queue[:n]...)
	g.queue = g.queue[n:]
	g.mu.Unlock()

	// A caller that went away before the transaction began is left out;
	// one that goes away during it still has its events committed, as a
	// single call would.
	live := calls[:0:0]
	for _, c := range calls {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			continue
		}
		live = append(live, c)
	}
	if len(live) > 0 {
		// The leader's context ends with its own request; the others'
		// transaction must not end with it.
		ctx := context.WithoutCancel(live[0].ctx)
		if err := db.publishCalls(ctx, live); err != nil {
			for _, c := range live {
				c.results, c.err = nil, err
			}
		}
	}

	g.mu.Lock()
	var next *publishCall
	if len(g.queue) > 0 {
		next = g.queue[0]
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, c := range calls {
		c.done = true
		c.turn <- struct{}{}
	}
	if next != nil {
		next.turn <- struct{}{}
	}
}
