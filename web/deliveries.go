package web

import (
	"net/http"
	"time"

	"github.com/hookd-dev/hookd"
)

// deliveryJSON is SPEC §3's delivery object, as listed; attempts is the
// number of attempts made so far.
type deliveryJSON struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	WebhookID      string     `json:"webhook_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	CreatedAt      time.Time  `json:"created_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
}

func toDeliveryJSON(d *hookd.Delivery) deliveryJSON {
	return deliveryJSON{
		ID:             d.ID,
		EventID:        d.EventID,
		EventType:      d.EventType,
		WebhookID:      d.WebhookID,
		Status:         string(d.Status),
		Attempts:       d.Attempts,
		CreatedAt:      d.CreatedAt.UTC(),
		LastAttemptAt:  utcPtr(d.LastAttemptAt),
		NextAttemptAt:  utcPtr(d.NextAttemptAt),
		LastStatusCode: d.LastStatusCode,
	}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// deliveryDetailJSON is the single-delivery read: the delivery with its
// attempts expanded and the request it sends.
type deliveryDetailJSON struct {
	ID             string        `json:"id"`
	EventID        string        `json:"event_id"`
	EventType      string        `json:"event_type"`
	WebhookID      string        `json:"webhook_id"`
	Status         string        `json:"status"`
	Attempts       []attemptJSON `json:"attempts"` // oldest first
	CreatedAt      time.Time     `json:"created_at"`
	LastAttemptAt  *time.Time    `json:"last_attempt_at"`
	NextAttemptAt  *time.Time    `json:"next_attempt_at"`
	LastStatusCode *int          `json:"last_status_code"`
	Request        requestJSON   `json:"request"`
}

// requestJSON is a delivery's HTTP request: headers with the spelling of
// SPEC §2, and the body exactly as signed.
type requestJSON struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type attemptJSON struct {
	Number       int       `json:"number"`
	StartedAt    time.Time `json:"started_at"`
	DurationMS   int64     `json:"duration_ms"`
	StatusCode   *int      `json:"status_code"` // null when no HTTP answer came
	ResponseBody string    `json:"response_body"`
	Error        *string   `json:"error"` // null on success
}

func toAttemptJSON(a *hookd.Attempt) attemptJSON {
	out := attemptJSON{
		Number:       a.Number,
		StartedAt:    a.StartedAt.UTC(),
		DurationMS:   a.Duration.Milliseconds(),
		ResponseBody: a.ResponseBody,
	}
	if a.StatusCode != 0 {
		code := a.StatusCode
		out.StatusCode = &code
	}
	if a.Error != "" {
		msg := a.Error
		out.Error = &msg
	}
	return out
}

// GET /v1/webhooks/{id}/deliveries?status=
func (s *Server) handleListDeliveries(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r, hookd.PrefixDelivery)
	if err != nil {
		return err
	}
	status := hookd.DeliveryStatus(r.URL.Query().Get("status"))
	if status != "" && !status.Valid() {
		return hookd.FieldErrorf("status", "status must be pending, delivered or failed")
	}
	deliveries, next, err := s.cfg.Store.ListDeliveries(r.Context(), c.orgID, r.PathValue("id"), status, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(deliveries, next, toDeliveryJSON))
	return nil
}

// GET /v1/webhooks/{id}/deliveries/{delivery_id}
func (s *Server) handleGetDelivery(w http.ResponseWriter, r *http.Request, c caller) error {
	d, err := s.cfg.Store.FindDelivery(r.Context(), c.orgID, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	headers, body, err := s.deliveryRequest(r.Context(), c.orgID, d)
	if err != nil {
		return err
	}
	out := deliveryDetailJSON{
		ID:             d.ID,
		EventID:        d.EventID,
		EventType:      d.EventType,
		WebhookID:      d.WebhookID,
		Status:         string(d.Status),
		Attempts:       make([]attemptJSON, 0, len(d.AttemptLog)),
		CreatedAt:      d.CreatedAt.UTC(),
		LastAttemptAt:  utcPtr(d.LastAttemptAt),
		NextAttemptAt:  utcPtr(d.NextAttemptAt),
		LastStatusCode: d.LastStatusCode,
		Request:        requestJSON{Headers: make(map[string]string, len(headers)), Body: string(body)},
	}
	for _, a := range d.AttemptLog {
		out.Attempts = append(out.Attempts, toAttemptJSON(a))
	}
	for k, v := range headers {
		out.Request.Headers[k] = v[0]
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver
func (s *Server) handleRedeliver(w http.ResponseWriter, r *http.Request, c caller) error {
	d, err := s.redeliver(r.Context(), c.orgID, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
	return nil
}
