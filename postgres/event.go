package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/jackc/pgx/v5"
)

// PublishEvents stores the events in one transaction: for each, the event
// and one pending delivery, due now, for every matching webhook (the
// organization's active webhooks subscribed to the type, plus its
// partner's active include_customers webhooks subscribed to it). Results
// come in the order of events. A created event's result is a copy of it
// with ID (a fresh "evt_" id when it had none), CreatedAt and Deliveries
// set; the events passed in are not modified. An event whose ID was
// already published for its organization, earlier, earlier in this batch,
// or by a concurrent call, creates nothing: its result is the first event,
// Created false. All or nothing: ENOTFOUND (field organization_id) when an
// organization does not exist, and nothing is written. When the call
// returns, the events and their deliveries are committed.
//
// The batch costs the same few statements whatever its size: the
// organizations and their receiving webhooks are read once, and events and
// deliveries are inserted from arrays.
func (db *DB) PublishEvents(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error) {
	if len(events) == 0 {
		return []hookd.PublishResult{}, nil
	}
	created := now()
	b := newBatch(events, created)
	err := db.write(ctx, "publish events", func(tx pgx.Tx) error {
		r, err := loadReceivers(ctx, tx, b.orgIDs, b.types)
		if err != nil {
			return err
		}
		for _, e := range b.events {
			if _, ok := r.partner[e.OrganizationID]; !ok {
				return &hookd.Error{Code: hookd.ENOTFOUND, Message: "organization " + e.OrganizationID + " not found", Field: "organization_id"}
			}
		}
		for _, e := range b.fresh {
			e.targets = r.subscribed(e.OrganizationID, e.Type)
			e.Deliveries = len(e.targets)
		}
		if err := b.insertEvents(ctx, tx); err != nil {
			return err
		}
		return b.insertDeliveries(ctx, tx, created)
	})
	if err != nil {
		return nil, err
	}
	return b.results(), nil
}

// batchEvent is an event of a batch on its way into the store.
type batchEvent struct {
	hookd.Event
	first   *batchEvent // the event that first had this id, in the store or the batch; itself when new
	seq     int64       // set once inserted
	targets []string    // ids of the receiving webhooks
}

type eventKey struct{ org, id string }

// batch is one PublishEvents call.
type batch struct {
	events []*batchEvent // in the caller's order
	fresh  []*batchEvent // the first of each id in the batch, sorted by (organization, id)
	orgIDs []string      // distinct
	types  []string      // distinct
}

func newBatch(in []*hookd.Event, created time.Time) *batch {
	b := &batch{events: make([]*batchEvent, len(in))}
	byKey := map[eventKey]*batchEvent{}
	orgs, types := map[string]bool{}, map[string]bool{}
	for i, e := range in {
		be := &batchEvent{Event: hookd.Event{ID: e.ID, Type: e.Type, OrganizationID: e.OrganizationID, CreatedAt: created, Data: e.Data, TraceParent: e.TraceParent}}
		if be.ID == "" {
			be.ID = hookd.NewID(hookd.PrefixEvent)
		}
		if len(be.Data) == 0 {
			be.Data = json.RawMessage("{}")
		}
		k := eventKey{be.OrganizationID, be.ID}
		if first, ok := byKey[k]; ok {
			be.first = first
		} else {
			be.first, byKey[k] = be, be
			b.fresh = append(b.fresh, be)
		}
		b.events[i] = be
		if !orgs[be.OrganizationID] {
			orgs[be.OrganizationID] = true
			b.orgIDs = append(b.orgIDs, be.OrganizationID)
		}
		if !types[be.Type] {
			types[be.Type] = true
			b.types = append(b.types, be.Type)
		}
	}
	// Inserting in one global order means two concurrent batches that share
	// ids wait for each other in the same order instead of deadlocking.
	slices.SortFunc(b.fresh, func(x, y *batchEvent) int {
		return cmp.Or(cmp.Compare(x.OrganizationID, y.OrganizationID), cmp.Compare(x.ID, y.ID))
	})
	return b
}

// insertEvents inserts the batch's new events; an id already in the store
// is skipped by ON CONFLICT, and its event is read back to answer with.
// When a concurrent transaction is inserting the same id, the insert waits
// for it to end: skipped if it commits, inserted if it rolls back.
func (b *batch) insertEvents(ctx context.Context, tx pgx.Tx) error {
	n := len(b.fresh)
	ids, orgs, types, data, counts := make([]string, n), make([]string, n), make([]string, n), make([][]byte, n), make([]int32, n)
	parents := make([]string, n)
	for i, e := range b.fresh {
		ids[i], orgs[i], types[i], data[i], counts[i] = e.ID, e.OrganizationID, e.Type, e.Data, int32(e.Deliveries)
		parents[i] = e.TraceParent
	}
	rows, _ := tx.Query(ctx, `
		INSERT INTO events (id, organization_id, type, created_at, data, deliveries, trace_parent)
		SELECT id, org, type, $6, data, n, NULLIF(tp, '')
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int[], $7::text[]) WITH ORDINALITY AS e (id, org, type, data, n, tp, i)
		ORDER BY i
		ON CONFLICT (organization_id, id) DO NOTHING
		RETURNING seq, organization_id, id`,
		ids, orgs, types, data, counts, b.fresh[0].CreatedAt, parents)
	byKey := make(map[eventKey]*batchEvent, n)
	for _, e := range b.fresh {
		byKey[eventKey{e.OrganizationID, e.ID}] = e
	}
	var (
		seq     int64
		org, id string
	)
	if _, err := pgx.ForEachRow(rows, []any{&seq, &org, &id}, func() error {
		byKey[eventKey{org, id}].seq = seq
		return nil
	}); err != nil {
		return err
	}

	var oldOrgs, oldIDs []string
	for _, e := range b.fresh {
		if e.seq == 0 {
			oldOrgs, oldIDs = append(oldOrgs, e.OrganizationID), append(oldIDs, e.ID)
		}
	}
	if len(oldIDs) == 0 {
		return nil
	}
	rows, _ = tx.Query(ctx, `
		SELECT id, organization_id, type, created_at, data, deliveries FROM events
		WHERE (organization_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, oldOrgs, oldIDs)
	old, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*hookd.Event, error) { return scanEvent(row) })
	if err != nil {
		return err
	}
	if len(old) != len(oldIDs) {
		return errors.New("an event skipped as already published is not in the store")
	}
	for _, e := range old {
		first := byKey[eventKey{e.OrganizationID, e.ID}]
		first.Event, first.first = *e, nil // no longer new: answered with the stored event
	}
	return nil
}

// insertDeliveries inserts the deliveries of the new events, adds them to
// the counts and notifies listening dispatchers: one round trip.
func (b *batch) insertDeliveries(ctx context.Context, tx pgx.Tx, created time.Time) error {
	var (
		ids, webhooks []string
		eventSeqs     []int64
	)
	for _, e := range b.fresh {
		if e.first == nil {
			continue
		}
		for _, w := range e.targets {
			ids, eventSeqs, webhooks = append(ids, hookd.NewID(hookd.PrefixDelivery)), append(eventSeqs, e.seq), append(webhooks, w)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var q pgx.Batch
	q.Queue(`
		INSERT INTO deliveries (id, event_seq, webhook_id, status, created_at, next_attempt_at)
		SELECT id, event_seq, webhook_id, 'pending', $4, $4
		FROM unnest($1::text[], $2::bigint[], $3::text[]) AS d (id, event_seq, webhook_id)`,
		ids, eventSeqs, webhooks, created)
	var c counts
	c.add(hookd.DeliveryPending, int64(len(ids)))
	c.queue(&q)
	q.Queue(`SELECT pg_notify($1, '')`, channel)
	return tx.SendBatch(ctx, &q).Close()
}

// results answers each event of the batch, in order.
func (b *batch) results() []hookd.PublishResult {
	out := make([]hookd.PublishResult, len(b.events))
	for i, e := range b.events {
		first := e
		if e.first != nil {
			first = e.first
		}
		ev := first.Event // a copy per result, as the caller may change it
		out[i] = hookd.PublishResult{Event: &ev, Created: e.first == e}
	}
	return out
}

// receivers are the webhooks that may receive a batch's events.
type receivers struct {
	partner map[string]string // organization id → its partner's id ("" for none), for every organization found
	own     map[string][]receiver
	shared  map[string][]receiver // partner id → its active include_customers webhooks
}

type receiver struct {
	id     string
	events []string
}

// loadReceivers reads the organizations and every active webhook that may
// receive their events of the given types: their own and their partners'
// include_customers ones. The webhooks are locked FOR KEY SHARE until the
// transaction ends, so that none is deleted between this read and the
// insert of its deliveries; updates (NO KEY UPDATE) are not held up.
func loadReceivers(ctx context.Context, tx pgx.Tx, orgIDs, types []string) (*receivers, error) {
	r := &receivers{partner: map[string]string{}, own: map[string][]receiver{}, shared: map[string][]receiver{}}
	var q pgx.Batch
	q.Queue(`SELECT id, coalesce(partner_id, '') FROM organizations WHERE id = ANY($1)`, orgIDs).Query(func(rows pgx.Rows) error {
		var id, partner string
		_, err := pgx.ForEachRow(rows, []any{&id, &partner}, func() error {
			r.partner[id] = partner
			return nil
		})
		return err
	})
	// ORDER BY id: concurrent publishers lock the rows in the same order.
	inBatch := make(map[string]bool, len(orgIDs))
	for _, id := range orgIDs {
		inBatch[id] = true
	}
	// One index condition, on the organizations and their partners; the
	// partners' webhooks that do not include customers are filtered out.
	q.Queue(`
		SELECT w.id, w.organization_id, w.events, w.include_customers FROM webhooks w
		WHERE w.organization_id = ANY(ARRAY(
				SELECT unnest($1::text[])
				UNION SELECT partner_id FROM organizations WHERE id = ANY($1) AND partner_id IS NOT NULL))
		  AND w.active AND w.events && $2::text[]
		  AND (w.organization_id = ANY($1) OR w.include_customers)
		ORDER BY w.id
		FOR KEY SHARE OF w`, orgIDs, types).Query(func(rows pgx.Rows) error {
		var (
			id, org   string
			events    []string
			customers bool
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &org, &events, &customers}, func() error {
			w := receiver{id: id, events: slices.Clone(events)} // the next row may scan into the same array
			if inBatch[org] {
				r.own[org] = append(r.own[org], w)
			}
			if customers {
				r.shared[org] = append(r.shared[org], w)
			}
			return nil
		})
		return err
	})
	if err := tx.SendBatch(ctx, &q).Close(); err != nil {
		return nil, err
	}
	return r, nil
}

// subscribed returns the ids of the webhooks that receive an event of type
// t of organization org.
func (r *receivers) subscribed(org, t string) []string {
	var ids []string
	for _, w := range r.own[org] {
		if slices.Contains(w.events, t) {
			ids = append(ids, w.id)
		}
	}
	if p := r.partner[org]; p != "" {
		for _, w := range r.shared[p] {
			if slices.Contains(w.events, t) {
				ids = append(ids, w.id)
			}
		}
	}
	return ids
}

// scanEvent reads id, organization_id, type, created_at, data, deliveries.
func scanEvent(row pgx.Row) (*hookd.Event, error) {
	var (
		e    hookd.Event
		data []byte
	)
	if err := row.Scan(&e.ID, &e.OrganizationID, &e.Type, &e.CreatedAt, &data, &e.Deliveries); err != nil {
		return nil, err
	}
	e.CreatedAt, e.Data = e.CreatedAt.UTC(), data
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
	err = db.write(ctx, "create ping", func(tx pgx.Tx) error {
		// KEY SHARE, as when publishing: the webhook cannot be deleted
		// before the delivery is in.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM webhooks WHERE id = $1 AND organization_id = $2 FOR KEY SHARE`, webhookID, orgID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return hookd.Errorf(hookd.ENOTFOUND, "webhook not found")
		} else if err != nil {
			return err
		}
		var q pgx.Batch
		q.Queue(`
			WITH e AS (
				INSERT INTO events (id, organization_id, type, created_at, data, deliveries) VALUES ($2, $3, $4, $6, $5, 1)
				RETURNING seq)
			INSERT INTO deliveries (id, event_seq, webhook_id, status, created_at, next_attempt_at)
			SELECT $1, e.seq, $7, 'pending', $6, $6 FROM e`,
			d.ID, d.EventID, orgID, hookd.EventPing, data, created, webhookID)
		var c counts
		c.add(hookd.DeliveryPending, 1)
		c.queue(&q)
		q.Queue(`SELECT pg_notify($1, '')`, channel)
		return tx.SendBatch(ctx, &q).Close()
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}
