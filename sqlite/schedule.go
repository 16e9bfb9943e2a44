package sqlite

import (
	"container/heap"
	"context"
	"database/sql"
	"math"
	"sync"
)

// schedule is what ClaimDeliveries remembers between claims: the webhooks
// that have pending deliveries, each with two times (unix ms):
//
//   - at, before which none of its pending deliveries is claimable: the
//     earliest next attempt time of those not leased, or lease expiry of
//     those leased, can be no earlier;
//   - due (with seq), no later in due order (next_attempt_at, then seq)
//     than any of its pending deliveries, leased or not, so that a claim
//     takes the oldest due deliveries of all webhooks, and a delivery
//     reclaimed after its lease expired keeps its place.
//
// A claim reads only the webhooks whose at has come, by due, so its cost
// follows the webhooks it serves, not the backlog nor the number of
// webhooks waiting for a retry or an answer.
//
// Both times are lower bounds, never late. An early time costs one wasted
// lookup, after which the claim sets the true ones; a late one would hide
// due work, so every write that makes a delivery claimable sooner than the
// schedule may think calls wake before it commits: publishing, a ping, a
// redelivery, a retry, a released lease. A lease that expires needs no
// write: the claim that leased the delivery put the expiry in the
// schedule. Writes that remove work (a delivered or failed delivery, a
// deleted webhook) leave an early time, which the next claim corrects.
//
// The schedule is built from the database by the first claim, and again
// after a claim that failed, whose rollback undid the leases the schedule
// had counted on. Only this process writes the database (the file lock),
// and every write is a transaction on the one write connection, so no
// delivery changes behind the schedule's back.
type schedule struct {
	mu      sync.Mutex
	built   bool // hooks reflect the database
	hooks   map[string]*hookTime
	waiting byAt  // hooks whose at had not come at the last claim
	ready   byDue // hooks whose at had come

	// backlog is whether the last claim met a webhook at its cap that
	// may have had more due: see pick.
	backlog bool
	// mergeOnly has every claim merge, never walk: tests set it to run the
	// merge where a walk would do.
	mergeOnly bool
}

// hookTime is a webhook of the schedule.
type hookTime struct {
	id  string
	at  int64
	due int64
	seq int64  // with due: seq 0 when any seq may be due then
	in  heapID // the heap it is in: none while a claim has it out
	i   int    // its index there
}

type heapID uint8

const (
	inNone heapID = iota
	inWaiting
	inReady
)

// wake records that each of webhookIDs has a pending delivery due, and
// claimable, from at (unix ms). It is called inside the write transaction
// that makes it so: should that transaction roll back, the early time
// costs a lookup.
func (s *schedule) wake(at int64, webhookIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.built {
		return // the build will read the committed rows
	}
	for _, id := range webhookIDs {
		h := s.hooks[id]
		if h == nil {
			h = &hookTime{id: id, at: at, due: at}
			s.hooks[id] = h
			heap.Push(&s.waiting, h)
			continue
		}
		if at >= h.at && at > h.due {
			continue
		}
		if at <= h.due {
			h.due, h.seq = at, 0
		}
		h.at = min(h.at, at)
		switch h.in {
		case inWaiting:
			heap.Fix(&s.waiting, h.i)
		case inReady:
			heap.Fix(&s.ready, h.i)
		}
	}
}

// advance moves to ready the webhooks whose at has come by now.
func (s *schedule) advance(now int64) {
	for len(s.waiting) > 0 && s.waiting[0].at <= now {
		heap.Push(&s.ready, heap.Pop(&s.waiting))
	}
}

// put returns h, taken out by a claim at now, to the heap its at says.
func (s *schedule) put(h *hookTime, now int64) {
	if h.at <= now {
		heap.Push(&s.ready, h)
	} else {
		heap.Push(&s.waiting, h)
	}
}

// invalidate makes the next claim build the schedule again.
func (s *schedule) invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.built, s.hooks, s.waiting, s.ready = false, nil, nil, nil
}

// scheduleQuery lists each webhook with pending deliveries and the earliest
// next attempt time of those (a lower bound of both the schedule's times:
// a lease only delays a delivery) by a loose scan of
// deliveries_webhook_due: one index lookup per webhook, whatever the
// number of rows.
const scheduleQuery = `
	WITH RECURSIVE hooks (id) AS (
		SELECT (SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending')
		UNION ALL
		SELECT (SELECT MIN(webhook_id) FROM deliveries WHERE status = 'pending' AND webhook_id > hooks.id)
		FROM hooks WHERE hooks.id IS NOT NULL)
	SELECT id, (SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' AND webhook_id = hooks.id)
	FROM hooks WHERE id IS NOT NULL`

// build reads the schedule from the database in tx. s.mu is held.
func (s *schedule) build(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, scheduleQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	s.hooks, s.waiting, s.ready = map[string]*hookTime{}, nil, nil
	for rows.Next() {
		var (
			id string
			at sql.NullInt64
		)
		if err := rows.Scan(&id, &at); err != nil {
			return err
		}
		if !at.Valid { // pending without a time: never claimable, but early is safe
			at.Int64 = math.MinInt64
		}
		h := &hookTime{id: id, at: at.Int64, due: at.Int64, in: inWaiting, i: len(s.waiting)}
		s.hooks[id], s.waiting = h, append(s.waiting, h)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	heap.Init(&s.waiting)
	s.built = true
	return nil
}

// byAt orders waiting webhooks by when they may have work.
type byAt []*hookTime

func (h byAt) Len() int           { return len(h) }
func (h byAt) Less(i, j int) bool { return h[i].at < h[j].at }
func (h byAt) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].i, h[j].i = i, j }
func (h *byAt) Push(x any)        { *h = append(*h, place(x, inWaiting, len(*h))) }
func (h *byAt) Pop() any          { return pop((*[]*hookTime)(h)) }

// byDue orders ready webhooks by due, then seq, then id so that equal
// times are served in a fixed order.
type byDue []*hookTime

func (h byDue) Len() int { return len(h) }
func (h byDue) Less(i, j int) bool {
	a, b := h[i], h[j]
	return a.due < b.due || a.due == b.due && (a.seq < b.seq || a.seq == b.seq && a.id < b.id)
}
func (h byDue) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].i, h[j].i = i, j }
func (h *byDue) Push(x any)   { *h = append(*h, place(x, inReady, len(*h))) }
func (h *byDue) Pop() any     { return pop((*[]*hookTime)(h)) }

func place(x any, in heapID, i int) *hookTime {
	h := x.(*hookTime)
	h.in, h.i = in, i
	return h
}

func pop(s *[]*hookTime) any {
	old := *s
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*s = old[:len(old)-1]
	h.in, h.i = inNone, -1
	return h
}
