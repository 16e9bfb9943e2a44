package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

type attemptObj struct {
	Number       int       `json:"number"`
	StartedAt    time.Time `json:"started_at"`
	DurationMS   int64     `json:"duration_ms"`
	StatusCode   *int      `json:"status_code"`
	ResponseBody string    `json:"response_body"`
	Error        *string   `json:"error"`
}

type deliveryDetailObj struct {
	ID             string       `json:"id"`
	EventID        string       `json:"event_id"`
	EventType      string       `json:"event_type"`
	WebhookID      string       `json:"webhook_id"`
	Status         string       `json:"status"`
	Attempts       []attemptObj `json:"attempts"`
	CreatedAt      time.Time    `json:"created_at"`
	LastAttemptAt  *time.Time   `json:"last_attempt_at"`
	NextAttemptAt  *time.Time   `json:"next_attempt_at"`
	LastStatusCode *int         `json:"last_status_code"`
	Request        struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	} `json:"request"`
}

func (ts *testServer) getDelivery(key, webhookID, id string) deliveryDetailObj {
	ts.t.Helper()
	var d deliveryDetailObj
	ts.do("GET", "/v1/webhooks/"+webhookID+"/deliveries/"+id, key, nil).want(ts.t, http.StatusOK, &d)
	return d
}

// attempt makes the next attempt of every due delivery through the store,
// as the dispatcher would, with the outcome outcome gives for each.
func (ts *testServer) attempt(outcome func(j *hookd.Job) (code int, errText string, next hookd.DeliveryStatus)) {
	ts.t.Helper()
	now := time.Now()
	jobs, err := ts.store.ClaimDeliveries(ts.t.Context(), now, now.Add(time.Minute), 100, 100)
	if err != nil {
		ts.t.Fatal(err)
	}
	var results []*hookd.AttemptResult
	for _, j := range jobs {
		code, errText, status := outcome(j)
		res := &hookd.AttemptResult{Job: j, Status: status, Attempt: hookd.Attempt{
			DeliveryID: j.DeliveryID, Number: j.Attempt, StartedAt: now.UTC().Truncate(time.Millisecond),
			Duration: 1234 * time.Millisecond, StatusCode: code, ResponseBody: "answer", Error: errText,
		}}
		if status == hookd.DeliveryPending {
			res.NextAttemptAt = now.Add(-time.Second) // due again at once
		}
		results = append(results, res)
	}
	if err := ts.store.CompleteAttempts(ts.t.Context(), results); err != nil {
		ts.t.Fatal(err)
	}
}

func TestDeliveries_Get(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	const secret = "It's a Secret to Everybody"
	signed := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["secret"] = secret }))
	unsigned := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { delete(m, "secret") }))
	r, e := ts.publish(a.org.ID, "scan_completed", map[string]any{"id": "scan-7", "data": map[string]any{"scan_id": "scn_7", "findings": map[string]int{"high": 2}}})
	r.want(t, http.StatusAccepted, nil)

	dlv := ts.listDeliveries(a.key, signed.ID)[0]

	t.Run("Pending", func(t *testing.T) {
		raw := ts.do("GET", "/v1/webhooks/"+signed.ID+"/deliveries/"+dlv.ID, a.key, nil)
		for _, s := range []string{`"attempts":[]`, `"last_attempt_at":null`, `"last_status_code":null`} {
			if !strings.Contains(string(raw.Body), s) {
				t.Errorf("body lacks %s: %s", s, raw.Body)
			}
		}
		d := ts.getDelivery(a.key, signed.ID, dlv.ID)
		if d.ID != dlv.ID || d.EventID != "scan-7" || d.EventType != "scan_completed" || d.WebhookID != signed.ID ||
			d.Status != "pending" || d.NextAttemptAt == nil {
			t.Fatalf("delivery = %+v", d)
		}
	})
	t.Run("RequestHeadersAndBody", func(t *testing.T) {
		d := ts.getDelivery(a.key, signed.ID, dlv.ID)
		wantBody := map[string]any{"id": "scan-7", "type": "scan_completed", "organization_id": a.org.ID, "webhook_id": signed.ID,
			"created_at": e.CreatedAt, "data": map[string]any{"scan_id": "scn_7", "findings": map[string]int{"high": 2}}}
		var gotBody map[string]any
		if err := json.Unmarshal([]byte(d.Request.Body), &gotBody); err != nil {
			t.Fatalf("body %q: %v", d.Request.Body, err)
		}
		equalJSON(t, "body", gotBody, wantBody)

		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(d.Request.Body))
		wantHeaders := map[string]string{
			"Content-Type":        "application/json",
			"User-Agent":          "hookd/" + hookd.Version,
			"X-CG-Hook-Event":     "scan_completed",
			"X-CG-Hook-Delivery":  dlv.ID,
			"X-CG-Hook-ID":        signed.ID,
			"X-CG-Hook-Attempt":   "1",
			"X-CG-Hook-Signature": "sha256=" + hex.EncodeToString(mac.Sum(nil)),
		}
		equalJSON(t, "headers", d.Request.Headers, wantHeaders)
	})
	t.Run("NoSignatureWithoutSecret", func(t *testing.T) {
		d := ts.getDelivery(a.key, unsigned.ID, ts.listDeliveries(a.key, unsigned.ID)[0].ID)
		if _, ok := d.Request.Headers["X-CG-Hook-Signature"]; ok || d.Request.Headers["X-CG-Hook-ID"] != unsigned.ID {
			t.Fatalf("headers = %v", d.Request.Headers)
		}
	})
	t.Run("Attempts", func(t *testing.T) {
		ts.attempt(func(j *hookd.Job) (int, string, hookd.DeliveryStatus) {
			if j.DeliveryID == dlv.ID {
				return 503, "receiver answered 503", hookd.DeliveryPending
			}
			return 0, "dial tcp: connection refused", hookd.DeliveryFailed
		})
		ts.attempt(func(*hookd.Job) (int, string, hookd.DeliveryStatus) { return 200, "", hookd.DeliveryDelivered })

		d := ts.getDelivery(a.key, signed.ID, dlv.ID)
		if d.Status != "delivered" || len(d.Attempts) != 2 || d.LastStatusCode == nil || *d.LastStatusCode != 200 ||
			d.NextAttemptAt != nil || d.LastAttemptAt == nil || d.Request.Headers["X-CG-Hook-Attempt"] != "2" {
			t.Fatalf("delivery = %+v", d)
		}
		first, second := d.Attempts[0], d.Attempts[1]
		if first.Number != 1 || *first.StatusCode != 503 || first.Error == nil || *first.Error != "receiver answered 503" ||
			first.DurationMS != 1234 || first.ResponseBody != "answer" || first.StartedAt.IsZero() {
			t.Fatalf("attempt 1 = %+v", first)
		}
		if second.Number != 2 || *second.StatusCode != 200 || second.Error != nil {
			t.Fatalf("attempt 2 = %+v", second)
		}

		failed := ts.getDelivery(a.key, unsigned.ID, ts.listDeliveries(a.key, unsigned.ID)[0].ID)
		if failed.Status != "failed" || len(failed.Attempts) != 1 || failed.Attempts[0].StatusCode != nil || failed.LastStatusCode != nil {
			t.Fatalf("failed delivery = %+v: status_code must be null without an HTTP answer", failed)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		ts.do("GET", "/v1/webhooks/"+signed.ID+"/deliveries/dlv_00000000000000000000000000", a.key, nil).wantError(t, 404, "not_found", "")
		ts.do("GET", "/v1/webhooks/"+unsigned.ID+"/deliveries/"+dlv.ID, a.key, nil).wantError(t, 404, "not_found", "")
		ts.do("GET", "/v1/webhooks/wh_00000000000000000000000000/deliveries/"+dlv.ID, a.key, nil).wantError(t, 404, "not_found", "")
	})
}

func TestDeliveries_List(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	w := ts.createWebhook(a.key, validWebhook())
	var want []string
	for range 5 {
		ts.publish(a.org.ID, "scan_started", nil)
	}
	for _, d := range ts.listDeliveries(a.key, w.ID) {
		want = append(want, d.ID)
	}
	if len(want) != 5 || !slices.IsSortedFunc(want, func(x, y string) int { return strings.Compare(y, x) }) {
		t.Fatalf("deliveries %v: want 5, newest first", want)
	}

	t.Run("Pages", func(t *testing.T) {
		var got []string
		path := "/v1/webhooks/" + w.ID + "/deliveries?limit=2"
		for {
			var l listObj[deliveryObj]
			ts.do("GET", path, a.key, nil).want(t, http.StatusOK, &l)
			for _, d := range l.Data {
				got = append(got, d.ID)
			}
			if l.NextCursor == nil {
				break
			}
			path = "/v1/webhooks/" + w.ID + "/deliveries?limit=2&cursor=" + *l.NextCursor
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages gave %v, want %v", got, want)
		}
	})
	t.Run("Status", func(t *testing.T) {
		ts.attempt(func(j *hookd.Job) (int, string, hookd.DeliveryStatus) {
			if j.DeliveryID == want[0] {
				return 500, "receiver answered 500", hookd.DeliveryFailed
			}
			return 200, "", hookd.DeliveryDelivered
		})
		for status, n := range map[string]int{"pending": 0, "delivered": 4, "failed": 1, "": 5} {
			var l listObj[deliveryObj]
			ts.do("GET", "/v1/webhooks/"+w.ID+"/deliveries?status="+status, a.key, nil).want(t, http.StatusOK, &l)
			if len(l.Data) != n {
				t.Errorf("status %q: %d deliveries, want %d", status, len(l.Data), n)
			}
			for _, d := range l.Data {
				if status != "" && d.Status != status {
					t.Errorf("status %q: got a %s delivery", status, d.Status)
				}
			}
		}
	})
	for _, tc := range []struct{ name, query, field string }{
		{"ErrStatus", "status=lost", "status"},
		{"ErrStatusCase", "status=PENDING", "status"},
		{"ErrLimit", "limit=1000", "limit"},
		{"ErrCursor", "cursor=" + encodeCursor(w.ID), "cursor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.do("GET", "/v1/webhooks/"+w.ID+"/deliveries?"+tc.query, a.key, nil).wantError(t, 400, "invalid_argument", tc.field)
		})
	}
	t.Run("ErrWebhookNotFound", func(t *testing.T) {
		ts.do("GET", "/v1/webhooks/wh_00000000000000000000000000/deliveries", a.key, nil).wantError(t, 404, "not_found", "")
	})
}

func TestDeliveries_Redeliver(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	w := ts.createWebhook(a.key, validWebhook())
	ts.publish(a.org.ID, "scan_started", nil)
	ts.attempt(func(*hookd.Job) (int, string, hookd.DeliveryStatus) {
		return 500, "receiver answered 500", hookd.DeliveryFailed
	})
	dlv := ts.listDeliveries(a.key, w.ID)[0]

	notified := ts.notify.Load()
	var got deliveryObj
	ts.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/"+dlv.ID+"/redeliver", a.key, nil).want(t, http.StatusAccepted, &got)
	if got.ID != dlv.ID || got.Status != "pending" || got.Attempts != 1 || got.NextAttemptAt == nil || got.EventID != dlv.EventID {
		t.Fatalf("redelivered = %+v", got)
	}
	if ts.notify.Load() != notified+1 {
		t.Fatal("the dispatcher was not notified")
	}
	// Attempt numbers continue.
	ts.attempt(func(*hookd.Job) (int, string, hookd.DeliveryStatus) { return 204, "", hookd.DeliveryDelivered })
	if d := ts.getDelivery(a.key, w.ID, dlv.ID); d.Status != "delivered" || len(d.Attempts) != 2 || d.Attempts[1].Number != 2 {
		t.Fatalf("delivery = %+v", d)
	}
	ts.do("POST", "/v1/webhooks/"+w.ID+"/deliveries/dlv_00000000000000000000000000/redeliver", a.key, nil).wantError(t, 404, "not_found", "")
	if ts.notify.Load() != notified+1 {
		t.Fatal("notified after a failed redelivery")
	}
}

func TestWebhooks_Ping(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.createOrg("Acme", "")
	// Pings go whatever the webhook subscribes to, active or not.
	w := ts.createWebhook(a.key, validWebhook(func(m map[string]any) { m["active"] = false }))
	notified := ts.notify.Load()
	var out struct {
		DeliveryID string `json:"delivery_id"`
	}
	ts.do("POST", "/v1/webhooks/"+w.ID+"/ping", a.key, nil).want(t, http.StatusAccepted, &out)
	if !strings.HasPrefix(out.DeliveryID, "dlv_") || ts.notify.Load() != notified+1 {
		t.Fatalf("ping = %+v, notified %d times", out, ts.notify.Load()-notified)
	}
	d := ts.getDelivery(a.key, w.ID, out.DeliveryID)
	if d.EventType != "ping" || d.Status != "pending" || d.Request.Headers["X-CG-Hook-Event"] != "ping" {
		t.Fatalf("ping delivery = %+v", d)
	}
	ts.do("POST", "/v1/webhooks/wh_00000000000000000000000000/ping", a.key, nil).wantError(t, 404, "not_found", "")
}
