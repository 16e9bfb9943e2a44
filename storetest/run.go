package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// RawSecretReader is implemented by a store under test (usually a test
// wrapper around it) that can show a webhook's secret exactly as it is
// stored. Run then checks that the stored form is not the plaintext.
type RawSecretReader interface {
	RawWebhookSecret(ctx context.Context, webhookID string) ([]byte, error)
}

// Run runs the conformance suite. open returns a fresh, empty store for
// each test; Run closes it when the test ends (the store's Close may also
// be called by open's own cleanup, so it must tolerate a second call).
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Organizations", func(t *testing.T) { testOrganizations(t, open) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, open) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open) })
	t.Run("Webhooks", func(t *testing.T) { testWebhooks(t, open) })
	t.Run("Publish", func(t *testing.T) { testPublish(t, open) })
	t.Run("Ping", func(t *testing.T) { testPing(t, open) })
	t.Run("Deliveries", func(t *testing.T) { testDeliveries(t, open) })
	t.Run("Redeliver", func(t *testing.T) { testRedeliver(t, open) })
	t.Run("Claim", func(t *testing.T) { testClaim(t, open) })
	t.Run("Complete", func(t *testing.T) { testComplete(t, open) })
	t.Run("Release", func(t *testing.T) { testRelease(t, open) })
	t.Run("NextDue", func(t *testing.T) { testNextDue(t, open) })
	t.Run("CountDeliveries", func(t *testing.T) { testCountDeliveries(t, open) })
	t.Run("Health", func(t *testing.T) { testHealth(t, open) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, open) })
}

// harness is one test's store and the helpers that set up its fixtures.
// Every helper fails the test on an unexpected error.
type harness struct {
	t   *testing.T
	ctx context.Context
	s   Store
}

func setup(t *testing.T, open func(t *testing.T) Store) *harness {
	t.Helper()
	s := open(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &harness{t: t, ctx: t.Context(), s: s}
}

// org creates an organization, a customer of partnerID when it is not "".
func (h *harness) org(partnerID string) *hookd.Organization {
	h.t.Helper()
	o := &hookd.Organization{Name: "Org " + fmt.Sprint(time.Now().UnixNano()), PartnerID: partnerID}
	if err := h.s.CreateOrganization(h.ctx, o); err != nil {
		h.t.Fatalf("CreateOrganization: %v", err)
	}
	return o
}

// webhook creates an active webhook of orgID subscribed to scan_completed
// and scan_started, with a secret, after applying the options.
func (h *harness) webhook(orgID string, opts ...func(*hookd.Webhook)) *hookd.Webhook {
	h.t.Helper()
	w := &hookd.Webhook{
		OrganizationID: orgID,
		Name:           "Receiver",
		URL:            "https://receiver.example.com/hooks",
		Events:         []string{hookd.EventScanCompleted, hookd.EventScanStarted},
		Secret:         "whsec_" + hookd.NewID(""),
		Active:         true,
	}
	for _, o := range opts {
		o(w)
	}
	if err := h.s.CreateWebhook(h.ctx, w); err != nil {
		h.t.Fatalf("CreateWebhook: %v", err)
	}
	return w
}

func inactive(w *hookd.Webhook)         { w.Active = false }
func includeCustomers(w *hookd.Webhook) { w.IncludeCustomers = true }
func noSecret(w *hookd.Webhook)         { w.Secret = "" }

func subscribed(types ...string) func(*hookd.Webhook) {
	return func(w *hookd.Webhook) { w.Events = types }
}

// event returns an unpublished scan event of orgID.
func event(orgID, typ string) *hookd.Event {
	return &hookd.Event{OrganizationID: orgID, Type: typ, Data: json.RawMessage(`{"scan_id":"scn_1","target":"https://shop.example.com"}`)}
}

// publish publishes events in one batch.
func (h *harness) publish(events ...*hookd.Event) []hookd.PublishResult {
	h.t.Helper()
	res, err := h.s.PublishEvents(h.ctx, events)
	if err != nil {
		h.t.Fatalf("PublishEvents: %v", err)
	}
	if len(res) != len(events) {
		h.t.Fatalf("PublishEvents: %d results for %d events", len(res), len(events))
	}
	return res
}

// deliveries lists every delivery of a webhook, newest first.
func (h *harness) deliveries(w *hookd.Webhook, status hookd.DeliveryStatus) []*hookd.Delivery {
	h.t.Helper()
	list, next, err := h.s.ListDeliveries(h.ctx, w.OrganizationID, w.ID, status, hookd.Page{Limit: hookd.MaxPageLimit})
	if err != nil {
		h.t.Fatalf("ListDeliveries: %v", err)
	}
	if next != "" {
		h.t.Fatalf("ListDeliveries: more than %d deliveries; the test expects fewer", hookd.MaxPageLimit)
	}
	return list
}

// delivery reads one delivery with its event and attempt log.
func (h *harness) delivery(w *hookd.Webhook, id string) *hookd.Delivery {
	h.t.Helper()
	d, err := h.s.FindDelivery(h.ctx, w.OrganizationID, w.ID, id)
	if err != nil {
		h.t.Fatalf("FindDelivery: %v", err)
	}
	return d
}

// claim claims with a lease of a minute from now.
func (h *harness) claim(now time.Time, limit, perWebhook int) []*hookd.Job {
	h.t.Helper()
	return h.claimUntil(now, now.Add(time.Minute), limit, perWebhook)
}

func (h *harness) claimUntil(now, until time.Time, limit, perWebhook int) []*hookd.Job {
	h.t.Helper()
	jobs, err := h.s.ClaimDeliveries(h.ctx, now, until, limit, perWebhook)
	if err != nil {
		h.t.Fatalf("ClaimDeliveries: %v", err)
	}
	return jobs
}

func (h *harness) complete(results ...*hookd.AttemptResult) {
	h.t.Helper()
	if err := h.s.CompleteAttempts(h.ctx, results); err != nil {
		h.t.Fatalf("CompleteAttempts: %v", err)
	}
}

func (h *harness) counts() map[hookd.DeliveryStatus]int {
	h.t.Helper()
	c, err := h.s.CountDeliveries(h.ctx)
	if err != nil {
		h.t.Fatalf("CountDeliveries: %v", err)
	}
	return c
}

// wantCounts checks CountDeliveries; statuses not given must count 0.
func (h *harness) wantCounts(pending, delivered, failed int) {
	h.t.Helper()
	c := h.counts()
	if c[hookd.DeliveryPending] != pending || c[hookd.DeliveryDelivered] != delivered || c[hookd.DeliveryFailed] != failed {
		h.t.Fatalf("CountDeliveries = %v, want pending %d, delivered %d, failed %d", c, pending, delivered, failed)
	}
}

// result is the outcome of an attempt of job made at started.
func result(j *hookd.Job, status hookd.DeliveryStatus, code int, started time.Time, next time.Time) *hookd.AttemptResult {
	a := hookd.Attempt{
		DeliveryID:   j.DeliveryID,
		Number:       j.Attempt,
		StartedAt:    started.UTC().Truncate(time.Millisecond),
		Duration:     42 * time.Millisecond,
		StatusCode:   code,
		ResponseBody: fmt.Sprintf(`{"answer":%d}`, code),
	}
	if status != hookd.DeliveryDelivered {
		a.Error = fmt.Sprintf("receiver answered %d", code)
	}
	return &hookd.AttemptResult{Job: j, Attempt: a, Status: status, NextAttemptAt: next}
}

func delivered(j *hookd.Job, at time.Time) *hookd.AttemptResult {
	return result(j, hookd.DeliveryDelivered, 200, at, time.Time{})
}

func retryAt(j *hookd.Job, at, next time.Time) *hookd.AttemptResult {
	return result(j, hookd.DeliveryPending, 503, at, next)
}

func failed(j *hookd.Job, at time.Time) *hookd.AttemptResult {
	return result(j, hookd.DeliveryFailed, 500, at, time.Time{})
}

// wantCode fails unless err has the code and, when field is not "", the
// field.
func wantCode(t *testing.T, err error, code, field string) {
	t.Helper()
	if got := hookd.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if field != "" && hookd.ErrorField(err) != field {
		t.Fatalf("error field = %q (%v), want %q", hookd.ErrorField(err), err, field)
	}
}

// wantTime fails unless tm is UTC, whole milliseconds and not zero.
func wantTime(t *testing.T, name string, tm time.Time) {
	t.Helper()
	switch {
	case tm.IsZero():
		t.Fatalf("%s is zero", name)
	case tm.Location() != time.UTC:
		t.Fatalf("%s = %v, not UTC", name, tm)
	case !tm.Equal(tm.Truncate(time.Millisecond)):
		t.Fatalf("%s = %v, not truncated to milliseconds", name, tm)
	}
}

// wantNear fails unless tm is within a few seconds of now (the store's
// clock is the machine's).
func wantNear(t *testing.T, name string, tm time.Time) {
	t.Helper()
	wantTime(t, name, tm)
	if d := time.Since(tm); d < -time.Second || d > 10*time.Second {
		t.Fatalf("%s = %v, not about now (%v)", name, tm, time.Now())
	}
}

// wantEqual fails when want and got differ; see diff.
func wantEqual(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := diff(want, got); d != "" {
		t.Fatalf("%s differs:\n%s", what, d)
	}
}

// ids returns the ids of deliveries or jobs, in order.
func ids[T any](list []T, id func(T) string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = id(v)
	}
	return out
}

func jobIDs(jobs []*hookd.Job) []string {
	return ids(jobs, func(j *hookd.Job) string { return j.DeliveryID })
}

// newestFirst sorts ids the way lists order them: ids are time-ordered, so
// the greatest is the newest.
func newestFirst(ids ...string) []string {
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids
}

func deliveryIDs(list []*hookd.Delivery) []string {
	return ids(list, func(d *hookd.Delivery) string { return d.ID })
}

// diff describes how got differs from want, field by field, or returns "".
// Times compare with Equal, pointers by what they point to, a nil slice
// equals an empty one; unexported fields are ignored.
func diff(want, got any) string {
	var out []string
	diffValue("", reflect.ValueOf(want), reflect.ValueOf(got), &out)
	return strings.Join(out, "\n")
}

var timeType = reflect.TypeFor[time.Time]()

func diffValue(path string, w, g reflect.Value, out *[]string) {
	if !w.IsValid() || !g.IsValid() {
		if w.IsValid() != g.IsValid() {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, w, g))
		}
		return
	}
	if w.Type() == timeType {
		wt, gt := w.Interface().(time.Time), g.Interface().(time.Time)
		if !wt.Equal(gt) {
			*out = append(*out, fmt.Sprintf("%s: want %v, got %v", path, wt, gt))
		}
		return
	}
	switch w.Kind() {
	case reflect.Pointer, reflect.Interface:
		if w.IsNil() || g.IsNil() {
			if w.IsNil() != g.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, show(w), show(g)))
			}
			return
		}
		diffValue(path, w.Elem(), g.Elem(), out)
	case reflect.Struct:
		for i := range w.NumField() {
			if f := w.Type().Field(i); f.IsExported() {
				diffValue(path+"."+f.Name, w.Field(i), g.Field(i), out)
			}
		}
	case reflect.Slice:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, show(w), show(g)))
			return
		}
		for i := range w.Len() {
			diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i), out)
		}
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, show(w), show(g)))
		}
	}
}

func show(v reflect.Value) string {
	switch {
	case (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && !v.IsNil():
		return show(v.Elem())
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		return fmt.Sprintf("%q", v.Bytes())
	}
	return fmt.Sprintf("%#v", v.Interface())
}
