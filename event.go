package hookd

import (
	"bytes"
	"encoding/json"
	"regexp"
	"time"
)

// Event is something that happened to a resource of an organization. The
// platform publishes it; hookd fans it out into one Delivery per matching
// webhook.
type Event struct {
	ID             string
	Type           string
	OrganizationID string
	CreatedAt      time.Time
	Data           json.RawMessage // a JSON object, compacted

	// Deliveries is how many deliveries the event created when it was first
	// published. Filled by the store.
	Deliveries int

	// TraceParent is the W3C traceparent of the span that published the
	// event, "" when tracing is off. Stores keep it and hand it back in
	// claimed Jobs, so that delivery attempts join the publisher's trace.
	// It is never sent to receivers.
	TraceParent string
}

// Limits of SPEC §3.
const (
	MaxEventDataLen  = 256 << 10
	MaxBatchEvents   = 1000
	MaxBatchBodySize = 16 << 20
)

// eventIDPattern bounds publisher-chosen ids: they appear in headers, URLs
// and logs, so only a safe alphabet is allowed.
var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,128}$`)

// Validate checks an event as published, and compacts Data so that the
// bytes stored, signed and sent are canonical. A Data over 256 KiB is
// ETOOLARGE; everything else wrong is EINVALID naming the field.
func (e *Event) Validate() error {
	if e.ID != "" && !eventIDPattern.MatchString(e.ID) {
		return FieldErrorf("id", "id must be 1–128 characters of A–Z, a–z, 0–9, '_', '.', ':' or '-'")
	}
	if e.OrganizationID == "" {
		return FieldErrorf("organization_id", "organization_id is required")
	}
	switch {
	case e.Type == "":
		return FieldErrorf("type", "type is required")
	case e.Type == EventPing:
		return FieldErrorf("type", "ping events are sent only by the ping endpoint and cannot be published")
	case LookupEventType(e.Type) == nil:
		return FieldErrorf("type", "unknown event type %q", e.Type)
	}
	if len(e.Data) > MaxEventDataLen {
		return &Error{Code: ETOOLARGE, Message: "data must be at most 256 KiB", Field: "data"}
	}
	data := bytes.TrimSpace(e.Data)
	if len(data) == 0 || data[0] != '{' {
		return FieldErrorf("data", "data must be a JSON object")
	}
	var buf bytes.Buffer
	buf.Grow(len(data)) // compacting never lengthens
	if err := json.Compact(&buf, data); err != nil {
		return FieldErrorf("data", "data must be a JSON object")
	}
	if buf.Len() > MaxEventDataLen {
		return &Error{Code: ETOOLARGE, Message: "data must be at most 256 KiB", Field: "data"}
	}
	e.Data = buf.Bytes()
	return nil
}

// Payload returns the body of a delivery of e to webhook webhookID, SPEC §2:
//
//	{"id":…,"type":…,"created_at":…,"organization_id":…,"webhook_id":…,"data":{…}}
//
// The bytes depend only on the event and the webhook id, so every attempt of
// a delivery sends, and signs, exactly the same body.
func (e *Event) Payload(webhookID string) []byte {
	b := make([]byte, 0, len(e.Data)+200)
	b = append(b, `{"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"created_at":"`...)
	b = e.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","organization_id":`...)
	b = appendJSONString(b, e.OrganizationID)
	b = append(b, `,"webhook_id":`...)
	b = appendJSONString(b, webhookID)
	b = append(b, `,"data":`...)
	if len(e.Data) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, e.Data...)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always marshals
	return append(b, enc...)
}

// PublishResult is the outcome of publishing one event.
type PublishResult struct {
	Event   *Event // the stored event, Deliveries filled
	Created bool   // false when its id had been published before
}
