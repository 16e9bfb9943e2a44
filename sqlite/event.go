package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/hookd-dev/hookd"
)

// PublishEvents stores the events in one transaction: for each, the event
// and one pending delivery, due now, for every matching webhook (the
// organization's active webhooks subscribed to the type, plus its
// partner's active include_customers webhooks subscribed to it). Results
// come in the order of events. A created event's result is a copy of it
// with ID (a fresh "evt_" id when it had none), CreatedAt and Deliveries
// set; the events passed in are not modified. An event whose ID was
// already published for its organization, earlier or earlier in this
// batch, creates nothing: its result is the first event, Created false.
// All or nothing: ENOTFOUND (field organization_id) when an organization
// does not exist, and nothing is written. When the call returns without
// an error, the events and their deliveries are committed.
//
// Concurrent calls may share one transaction (see writeGroup): each
// call's events stay all or nothing, each call returns only after that
// transaction committed, and one call's failure does not fail the others.
func (db *DB) PublishEvents(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error) {
	if len(events) == 0 {
		return []hookd.PublishResult{}, nil
	}
	var results []hookd.PublishResult
	if err := db.writes.run(ctx, db, "publish events", len(events), db.publishTx(events, &results), nil); err != nil {
		return nil, err
	}
	return results, nil
}

// publishTx is the write of PublishEvents in a transaction, setting
// *results.
func (db *DB) publishTx(events []*hookd.Event, results *[]hookd.PublishResult) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		p, err := db.newPublisher(ctx, tx)
		if err != nil {
			return err
		}
		if *results, err = p.publishAll(ctx, events, now()); err != nil {
			return err
		}
		var c counts
		c.add(hookd.DeliveryPending, p.deliveries)
		return c.save(ctx, db, tx)
	}
}

// Statements of publishing. ON CONFLICT makes the duplicate check free for
// new events: only a repeated id costs the extra lookup.
const (
	findEventQuery = `
		SELECT id, organization_id, type, created_at, data, deliveries FROM events WHERE organization_id = ? AND id = ?`
	partnerQuery   = `SELECT partner_id FROM organizations WHERE id = ?`
	receiversQuery = `
		SELECT id, events FROM webhooks
		WHERE organization_id = ? AND active AND (include_customers OR NOT ?)
		ORDER BY id`
)

var (
	insertEventQueries    = sized(insertEvents)
	insertDeliveryQueries = sized(insertDeliveries)
)

// insertEvents is the INSERT of n events, eventArgs parameters each,
// returning the organization, id and seq of each row inserted.
func insertEvents(n int) string {
	row := "(?, ?, ?, ?, ?, ?, NULLIF(?, ''))"
	return `INSERT INTO events (id, organization_id, type, created_at, data, deliveries, trace_parent) VALUES ` +
		strings.Repeat(row+", ", n-1) + row + `
		ON CONFLICT (organization_id, id) DO NOTHING
		RETURNING organization_id, id, seq`
}

const eventArgs = 7 // id, organization, type, creation time, data, deliveries, trace parent

// insertDeliveries is the INSERT of n deliveries, deliveryArgs parameters
// each.
func insertDeliveries(n int) string {
	return `INSERT INTO deliveries (id, event_seq, webhook_id, status, created_at, next_attempt_at)
		SELECT column1, column2, column3, 'pending', column4, column4 FROM (VALUES ` + valuesList(n, deliveryArgs) + `)`
}

const deliveryArgs = 4 // id, event seq, webhook id, creation time

// publisher publishes a batch of events inside one transaction. It loads
// each organization's receiving webhooks once per batch and writes
// deliveries by chunks.
type publisher struct {
	db                   *DB
	tx                   *sql.Tx
	findEvent            *sql.Stmt
	partner, receiversOf *sql.Stmt
	pending              []any // arguments of deliveries not inserted yet
	orgs                 map[string]*receivers
	deliveries           int // created in this batch
}

func (db *DB) newPublisher(ctx context.Context, tx *sql.Tx) (*publisher, error) {
	p := &publisher{db: db, tx: tx, orgs: map[string]*receivers{}}
	for _, s := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&p.findEvent, findEventQuery},
		{&p.partner, partnerQuery},
		{&p.receiversOf, receiversQuery},
	} {
		var err error
		if *s.stmt, err = db.stmt(ctx, tx, s.query); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// addDelivery queues a delivery row and writes the queue when it holds as
// many rows as the largest insert.
func (p *publisher) addDelivery(ctx context.Context, args ...any) error {
	p.pending = append(p.pending, args...)
	if len(p.pending) < rowSizes[0]*deliveryArgs {
		return nil
	}
	return p.flush(ctx)
}

// flush writes the queued deliveries.
func (p *publisher) flush(ctx context.Context) error {
	err := p.db.chunked(ctx, p.tx, insertDeliveryQueries, deliveryArgs, p.pending, nil)
	p.pending = p.pending[:0]
	return err
}

// receivers are the webhooks that may receive an organization's events:
// its own active ones and its partner's active include_customers ones.
type receivers struct {
	webhooks []receiver
	byType   map[string][]string // event type → ids of the subscribed webhooks
}

type receiver struct {
	id     string
	events []string
}

// publishAll publishes events and returns their results. The events go
// in by multi-row inserts, like their deliveries: one statement per event
// cost more than the event's row.
func (p *publisher) publishAll(ctx context.Context, events []*hookd.Event, created time.Time) ([]hookd.PublishResult, error) {
	fresh := make([]*hookd.Event, len(events))
	targets := make([][]string, len(events))
	args := make([]any, 0, len(events)*eventArgs)
	for i, in := range events {
		r, err := p.receivers(ctx, in.OrganizationID)
		if err != nil {
			return nil, err
		}
		e := &hookd.Event{ID: in.ID, Type: in.Type, OrganizationID: in.OrganizationID, CreatedAt: created, Data: in.Data, TraceParent: in.TraceParent}
		if e.ID == "" {
			e.ID = hookd.NewID(hookd.PrefixEvent)
		}
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("{}")
		}
		targets[i] = r.subscribed(e.Type)
		e.Deliveries = len(targets[i])
		fresh[i] = e
		args = append(args, e.ID, e.OrganizationID, e.Type, millis(created), []byte(e.Data), e.Deliveries, e.TraceParent)
	}

	// ON CONFLICT skips an id published before, or earlier in the batch;
	// RETURNING names the rows inserted, in no promised order.
	type key struct{ org, id string }
	inserted := make(map[key]int64, len(events))
	err := p.db.chunked(ctx, p.tx, insertEventQueries, eventArgs, args, func(rows *sql.Rows) error {
		var k key
		var seq int64
		if err := rows.Scan(&k.org, &k.id, &seq); err != nil {
			return err
		}
		inserted[k] = seq
		return nil
	})
	if err != nil {
		return nil, err
	}

	results := make([]hookd.PublishResult, len(events))
	for i, e := range fresh {
		k := key{e.OrganizationID, e.ID}
		seq, ok := inserted[k]
		if !ok { // published before: answer with the first one
			first, err := scanEvent(p.findEvent.QueryRowContext(ctx, e.OrganizationID, e.ID))
			if err != nil {
				return nil, err
			}
			results[i] = hookd.PublishResult{Event: first, Created: false}
			continue
		}
		delete(inserted, k) // a later event of the batch with this id repeats it
		for _, webhookID := range targets[i] {
			if err := p.addDelivery(ctx, hookd.NewID(hookd.PrefixDelivery), seq, webhookID, millis(created)); err != nil {
				return nil, err
			}
		}
		p.deliveries += len(targets[i])
		p.db.schedule.wake(millis(created), targets[i]...)
		results[i] = hookd.PublishResult{Event: e, Created: true}
	}
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return results, nil
}

// receivers loads, once per batch, the webhooks that may receive orgID's
// events. ENOTFOUND (field organization_id) when there is no such
// organization.
func (p *publisher) receivers(ctx context.Context, orgID string) (*receivers, error) {
	if r, ok := p.orgs[orgID]; ok {
		return r, nil
	}
	var partner sql.NullString
	err := p.partner.QueryRowContext(ctx, orgID).Scan(&partner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &hookd.Error{Code: hookd.ENOTFOUND, Message: "organization " + orgID + " not found", Field: "organization_id"}
	} else if err != nil {
		return nil, err
	}
	r := &receivers{byType: map[string][]string{}}
	if err := r.load(ctx, p.receiversOf, orgID, false); err != nil {
		return nil, err
	}
	if partner.Valid {
		if err := r.load(ctx, p.receiversOf, partner.String, true); err != nil {
			return nil, err
		}
	}
	p.orgs[orgID] = r
	return r, nil
}

// load adds orgID's active webhooks, only the include_customers ones when
// customers is set.
func (r *receivers) load(ctx context.Context, receiversOf *sql.Stmt, orgID string, customers bool) error {
	rows, err := receiversOf.QueryContext(ctx, orgID, customers)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			w      receiver
			events string
		)
		if err := rows.Scan(&w.id, &events); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(events), &w.events); err != nil {
			return err
		}
		r.webhooks = append(r.webhooks, w)
	}
	return rows.Err()
}

// subscribed returns the ids of the webhooks subscribed to type t.
func (r *receivers) subscribed(t string) []string {
	if ids, ok := r.byType[t]; ok {
		return ids
	}
	var ids []string
	for _, w := range r.webhooks {
		for _, e := range w.events {
			if e == t {
				ids = append(ids, w.id)
				break
			}
		}
	}
	r.byType[t] = ids
	return ids
}

// scanEvent reads id, organization_id, type, created_at, data, deliveries.
func scanEvent(row interface{ Scan(...any) error }) (*hookd.Event, error) {
	var (
		e       hookd.Event
		created int64
		data    []byte
	)
	if err := row.Scan(&e.ID, &e.OrganizationID, &e.Type, &created, &data, &e.Deliveries); err != nil {
		return nil, err
	}
	e.CreatedAt, e.Data = fromMillis(created), data
	return &e, nil
}

// pingData is the data of a ping event (the catalog's "ping" type).
type pingData struct {
	Message   string `json:"message"`
	WebhookID string `json:"webhook_id"`
}

// CreatePing stores a ping event of the webhook's organization and one
// pending delivery of it to the webhook, due now, whatever the webhook
// subscribes to and whether or not it is active. ENOTFOUND as FindWebhook.
func (db *DB) CreatePing(ctx context.Context, orgID, webhookID string) (*hookd.Delivery, error) {
	created := now()
	d := &hookd.Delivery{
		ID:             hookd.NewID(hookd.PrefixDelivery),
		EventID:        hookd.NewID(hookd.PrefixEvent),
		EventType:      hookd.EventPing,
		WebhookID:      webhookID,
		OrganizationID: orgID,
		Status:         hookd.DeliveryPending,
		CreatedAt:      created,
		NextAttemptAt:  &created,
	}
	data, err := json.Marshal(pingData{Message: "ping from hookd", WebhookID: webhookID})
	if err != nil {
		return nil, wrap("create ping", err)
	}
	err = db.write(ctx, "create ping", func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = ? AND organization_id = ?`, webhookID, orgID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
		} else if err != nil {
			return err
		}
		var seq int64
		if err := tx.QueryRowContext(ctx, `
			INSERT INTO events (id, organization_id, type, created_at, data, deliveries) VALUES (?, ?, ?, ?, ?, 1)
			RETURNING seq`, d.EventID, orgID, hookd.EventPing, millis(created), data).Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO deliveries (id, event_seq, webhook_id, status, created_at, next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?)`,
			d.ID, seq, webhookID, millis(created), millis(created)); err != nil {
			return err
		}
		db.schedule.wake(millis(created), webhookID)
		var c counts
		c.add(hookd.DeliveryPending, 1)
		return c.save(ctx, db, tx)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}
