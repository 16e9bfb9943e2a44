package sqlite

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"strconv"
)

// firstReadSizes are how many rows a claim reads at first of each webhook
// it meets, as many as its share of the claim's limit rounded up to one of
// these. One statement reads all the webhooks a claim meets at once: a
// statement costs SQLite more than the few rows it returns, which matters
// when a claim spreads over hundreds of webhooks with one delivery each.
var firstReadSizes = [...]int{1, 4, 16}

// firstReadQueries read, for each webhook of the JSON array ?1, its oldest
// pending deliveries not leased at ?2 (no lease, or an expired one), one
// more than the size: the row after those asked for tells whether more are
// claimable or when the next becomes due. The LIMIT is written out, one
// statement per size, because SQLite plans a statement again whenever the
// value bound to a LIMIT parameter changes.
var firstReadQueries = func() (queries [len(firstReadSizes)]string) {
	for i, n := range firstReadSizes {
		queries[i] = `
			SELECT d.webhook_id, d.seq, d.next_attempt_at
			FROM json_each(?1) AS h, deliveries AS d
			WHERE d.seq IN (
				SELECT seq FROM deliveries INDEXED BY deliveries_webhook_due
				WHERE webhook_id = h.value AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?2)
				ORDER BY next_attempt_at, seq
				LIMIT ` + strconv.Itoa(n+1) + `)
			ORDER BY 1, 3, 2`
	}
	return queries
}()

// readOnQuery reads one webhook's pending deliveries not leased at ?4 in
// due order from the position (?2, ?3) = (next_attempt_at, seq),
// exclusive, for a claim that took all it had read of the webhook and
// wants more. Each half is a range of deliveries_webhook_due (seq is the
// index's last column), so resuming among many rows due at the same
// millisecond does not read them again, and their merge keeps due order.
// It has no LIMIT (see firstReadQueries): the reader stops when it has
// what it needs, and SQLite produces rows one step at a time.
const readOnQuery = `
	SELECT seq, next_attempt_at FROM deliveries INDEXED BY deliveries_webhook_due
	WHERE webhook_id = ?1 AND status = 'pending' AND next_attempt_at = ?2 AND seq > ?3
	  AND (lease_until IS NULL OR lease_until <= ?4)
	UNION ALL
	SELECT seq, next_attempt_at FROM deliveries INDEXED BY deliveries_webhook_due
	WHERE webhook_id = ?1 AND status = 'pending' AND next_attempt_at > ?2
	  AND (lease_until IS NULL OR lease_until <= ?4)
	ORDER BY 2, 1`

// noTime is before any time.
const noTime = math.MinInt64

// none marks a time not known, or not there.
const none = math.MaxInt64

// walkQuery reads the claimable deliveries of all webhooks in due order.
// It has no LIMIT (see firstReadQueries).
const walkQuery = `
	SELECT seq, webhook_id FROM deliveries INDEXED BY deliveries_due
	WHERE status = 'pending' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
	ORDER BY next_attempt_at, seq`

// maxWalkSkips is how many deliveries of webhooks at their cap a walk
// passes over before it gives up for the merge.
const maxWalkSkips = 32

// pick returns the seqs of up to limit claimable deliveries, oldest due
// first (those due at the same millisecond in the order written), at most
// perWebhook per webhook counting leases. It never reads more of a
// webhook's backlog than it takes.
//
// Two ways give that result. While no webhook at its cap has deliveries
// due, walking all claimable deliveries in due order (walk) is cheapest:
// it reads little more than it takes. A webhook at its cap with a backlog
// would make every walk pass over that backlog, so then the claim merges
// instead. The schedule hands out the webhooks whose work may be claimable,
// by due time; one at its cap is passed over without a query; the others
// have their oldest claimable deliveries read through
// deliveries_webhook_due into the merge. A delivery is taken only when no
// webhook still in the schedule can have an older one (the schedule's
// times are lower bounds), and the merge stops as soon as it has limit:
// the webhooks it did not reach keep their times and come first next time,
// and those it served go back at the time of their next delivery or lease
// expiry, which is how webhooks with work due at once are served in turn.
func (db *DB) pick(ctx context.Context, tx *sql.Tx, now, until int64, limit, perWebhook int, leases map[string]leased) ([]int64, error) {
	s := &db.schedule
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.built {
		if err := s.build(ctx, tx); err != nil {
			return nil, err
		}
	}
	s.advance(now)
	p := &picker{db: db, ctx: ctx, tx: tx, s: s, now: now, limit: limit, perWebhook: perWebhook, leases: leases, met: map[string]*reading{}}
	if !s.backlog && !s.mergeOnly {
		done, err := p.walk()
		if err != nil || done {
			return p.picked, err
		}
		p.picked = p.picked[:0] // start again, merging
	}
	for len(p.picked) < limit {
		if len(p.rows) > 0 && (len(s.ready) == 0 || p.rows[0].before(s.ready[0])) {
			p.take()
			continue
		}
		if len(s.ready) == 0 {
			break // nothing else is claimable
		}
		if err := p.readDue(); err != nil {
			return nil, err
		}
	}
	p.putBack(until)
	return p.picked, nil
}

// walk picks the claimable deliveries in due order, passing over those of
// webhooks at their cap. It gives up, and notes a backlog in the
// schedule, when it has passed over maxWalkSkips of them. A walk leaves
// the schedule as it is: taking deliveries only makes its times earlier
// than they need be, and the next merge corrects them.
func (p *picker) walk() (done bool, err error) {
	q, err := p.db.stmt(p.ctx, p.tx, walkQuery)
	if err != nil {
		return false, err
	}
	res, err := q.QueryContext(p.ctx, p.now)
	if err != nil {
		return false, err
	}
	defer res.Close()
	taken := map[string]int{}
	skipped := 0
	for len(p.picked) < p.limit && res.Next() {
		var (
			seq int64
			id  string
		)
		if err := res.Scan(&seq, &id); err != nil {
			return false, err
		}
		if p.perWebhook > 0 && p.leases[id].n+taken[id] >= p.perWebhook {
			if skipped++; skipped > maxWalkSkips {
				p.s.backlog = true
				return false, nil
			}
			continue
		}
		taken[id]++
		p.picked = append(p.picked, seq)
	}
	// Passing over a few went well this time, but those webhooks have more.
	p.s.backlog = skipped > 0
	return true, res.Err()
}

// picker is the state of one pick.
type picker struct {
	db         *DB
	ctx        context.Context
	tx         *sql.Tx
	s          *schedule
	now        int64
	limit      int
	perWebhook int
	leases     map[string]leased

	met    map[string]*reading // the webhooks taken out of the schedule
	later  []*hookTime         // taken out, but not claimable before a later now
	rows   rowHeap             // read, not taken yet
	picked []int64
}

// reading is a webhook a claim took out of the schedule.
type reading struct {
	hook  *hookTime
	quota int   // how many the claim may take (the cap less the leases)
	taken int   // how many the claim took
	first int64 // the due time of the first it took
	read  bool  // read at least once; a webhook met at its cap is not
	chunk int   // how many rows the next read asks for

	// The last read: how many rows it asks for and has got, whether it has
	// seen the row after those (done), and what that row says.
	want, got int
	done      bool
	more      bool  // the row after is claimable
	next      int64 // its due time; none when the webhook has no row after
	nextSeq   int64 // and its seq

	afterAt, afterSeq int64  // the last row read
	unread            int    // rows read and not taken
	untaken           dueRow // after the claim: the first row read and not taken
}

// readDue takes out of the schedule the webhooks whose time has come, as
// many as the claim still wants rows (each gives one or more, or was
// early), and reads their oldest claimable rows.
func (p *picker) readDue() error {
	want := max(1, p.limit-len(p.picked)-len(p.rows))
	var fresh []*reading
	for len(fresh) < want && len(p.s.ready) > 0 {
		t := heap.Pop(&p.s.ready).(*hookTime)
		if t.at > p.now {
			// Made ready by a claim at a later now than this one: reading
			// it would find nothing claimable, so it is left as it is.
			p.later = append(p.later, t)
			continue
		}
		h := p.met[t.id]
		if h == nil {
			h = &reading{hook: t, quota: math.MaxInt, afterAt: noTime}
			if p.perWebhook > 0 {
				h.quota = p.perWebhook - p.leases[t.id].n
			}
			p.met[t.id] = h
		}
		switch {
		case h.taken >= h.quota:
			// At its cap: out of the schedule until the claim ends.
		case h.read: // back for more after the claim took what it had read
			if err := p.readOn(h); err != nil {
				return err
			}
		default:
			fresh = append(fresh, h)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return p.readFirst(fresh, want)
}

// readFirst reads the oldest claimable rows of webhooks met for the first
// time, their share of want each, in one statement.
func (p *picker) readFirst(hooks []*reading, want int) error {
	share := (want + len(hooks) - 1) / len(hooks)
	size := 0
	for size < len(firstReadSizes)-1 && firstReadSizes[size] < share {
		size++
	}
	ids := make([]string, len(hooks))
	for i, h := range hooks {
		ids[i] = h.hook.id
		h.begin(min(h.quota-h.taken, firstReadSizes[size]))
		h.chunk = 2 * firstReadSizes[size]
	}
	arg, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	q, err := p.db.stmt(p.ctx, p.tx, firstReadQueries[size])
	if err != nil {
		return err
	}
	res, err := q.QueryContext(p.ctx, string(arg), p.now)
	if err != nil {
		return err
	}
	defer res.Close()
	for res.Next() {
		var (
			id string
			r  dueRow
		)
		if err := res.Scan(&id, &r.seq, &r.at); err != nil {
			return err
		}
		if h := p.met[id]; h != nil {
			p.offer(h, r)
		}
	}
	return res.Err()
}

// readOn reads more of a webhook whose rows read so far were all taken,
// twice as many as the time before.
func (p *picker) readOn(h *reading) error {
	h.begin(min(h.quota-h.taken, p.limit-len(p.picked), h.chunk))
	h.chunk *= 2
	q, err := p.db.stmt(p.ctx, p.tx, readOnQuery)
	if err != nil {
		return err
	}
	res, err := q.QueryContext(p.ctx, h.hook.id, h.afterAt, h.afterSeq, p.now)
	if err != nil {
		return err
	}
	defer res.Close()
	for !h.done && res.Next() {
		var r dueRow
		if err := res.Scan(&r.seq, &r.at); err != nil {
			return err
		}
		p.offer(h, r)
	}
	return res.Err()
}

// begin starts a read of up to n rows of h. Until a row after those is
// seen, the webhook has nothing after them.
func (h *reading) begin(n int) {
	h.read, h.want, h.got, h.done, h.more, h.next = true, n, 0, false, false, none
}

// offer hands the next row of h's read, in due order, to the merge, or
// notes what it says when the read has all it asked for or the row is not
// due yet.
func (p *picker) offer(h *reading, r dueRow) {
	switch {
	case h.done:
	case h.got == h.want || r.at > p.now:
		h.done, h.more, h.next, h.nextSeq = true, r.at <= p.now, r.at, r.seq
	default:
		r.hook = h
		heap.Push(&p.rows, r)
		h.got++
		h.unread++
		h.afterAt, h.afterSeq = r.at, r.seq
	}
}

// take takes the oldest row read. When it was the last read of its
// webhook and more are claimable, the webhook goes back in the merge at the
// time of its next row.
func (p *picker) take() {
	r := heap.Pop(&p.rows).(dueRow)
	p.picked = append(p.picked, r.seq)
	h := r.hook
	if h.taken++; h.taken == 1 {
		h.first = r.at
	}
	if h.unread--; h.unread == 0 && h.more {
		h.hook.at, h.hook.due, h.hook.seq = h.next, h.next, h.nextSeq
		heap.Push(&p.s.ready, h.hook)
	}
}

// putBack returns to the schedule every webhook the claim took out, with
// the times its pending deliveries now have, and drops those with none.
func (p *picker) putBack(until int64) {
	for _, t := range p.later {
		p.s.put(t, p.now)
	}
	for _, h := range p.met {
		h.untaken = dueRow{at: none}
	}
	for len(p.rows) > 0 { // read but not taken: the limit was reached
		r := heap.Pop(&p.rows).(dueRow)
		if r.hook.untaken.at == none { // rows come out oldest first
			r.hook.untaken = r
		}
	}
	p.s.backlog = false
	for id, h := range p.met {
		t := h.hook
		if !h.read || h.taken >= h.quota && (h.more || h.untaken.at != none) {
			p.s.backlog = true // at its cap, and it may have more due
		}
		if t.in != inNone { // back for more, and the claim ended before reading it
			if t.in == inReady {
				heap.Remove(&p.s.ready, t.i)
			} else {
				heap.Remove(&p.s.waiting, t.i)
			}
		}
		if !h.read { // at its cap: its times stand
			p.s.put(t, p.now)
			continue
		}
		// What was read and not taken is claimable now; what was not read
		// comes at next or later; leased deliveries, the ones taken
		// included, come back when their leases expire, due as they were.
		at, due := min(h.untaken.at, h.next), dueRow{at: h.next, seq: h.nextSeq}
		if h.untaken.at != none {
			due = h.untaken // before next
		}
		if l, ok := p.leases[id]; ok {
			at, due = min(at, l.first), earlier(due, l.oldest)
		}
		if h.taken > 0 {
			at, due = min(at, until), earlier(due, h.first)
		}
		if at == none {
			delete(p.s.hooks, id) // nothing pending
			continue
		}
		t.at, t.due, t.seq = at, due.at, due.seq
		p.s.put(t, p.now)
	}
}

// dueRow is a claimable delivery read by a claim, or a place in due order.
type dueRow struct {
	at, seq int64
	hook    *reading
}

// before reports whether r comes before every delivery of t in due order.
func (r dueRow) before(t *hookTime) bool {
	return r.at < t.due || r.at == t.due && r.seq < t.seq
}

// earlier is p, or the place of any delivery due at at when that comes
// first.
func earlier(p dueRow, at int64) dueRow {
	if at <= p.at {
		return dueRow{at: at}
	}
	return p
}

// rowHeap orders rows by due time, then seq (the order they were written).
type rowHeap []dueRow

func (h rowHeap) Len() int { return len(h) }
func (h rowHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h rowHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *rowHeap) Push(x any)   { *h = append(*h, x.(dueRow)) }
func (h *rowHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
