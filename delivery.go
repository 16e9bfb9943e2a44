package hookd

import (
	"net/http"
	"strconv"
	"time"
)

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"   // waiting for its next attempt
	DeliveryDelivered DeliveryStatus = "delivered" // an attempt got a 2xx
	DeliveryFailed    DeliveryStatus = "failed"    // every attempt of its round failed
)

// Valid reports whether s is one of the three statuses.
func (s DeliveryStatus) Valid() bool {
	return s == DeliveryPending || s == DeliveryDelivered || s == DeliveryFailed
}

// Delivery is one event going to one webhook. Its id is stable across
// attempts and manual redeliveries, so receivers can deduplicate on it.
type Delivery struct {
	ID             string
	EventID        string
	EventType      string
	WebhookID      string
	OrganizationID string // the webhook's organization
	Status         DeliveryStatus
	Attempts       int // attempts made so far, over every round
	// RoundStart is the value of Attempts when the current round began: 0
	// at creation, the attempt count at each manual redelivery. Retry k of a
	// round is attempt number RoundStart+1+k.
	RoundStart     int
	CreatedAt      time.Time
	LastAttemptAt  *time.Time
	NextAttemptAt  *time.Time // set while pending
	LastStatusCode *int       // nil when no attempt got an HTTP answer

	// Filled by FindDelivery only.
	Event      *Event
	AttemptLog []*Attempt // oldest first
}

// Attempt is one HTTP request of a delivery and what came back.
type Attempt struct {
	DeliveryID   string
	Number       int
	StartedAt    time.Time
	Duration     time.Duration
	StatusCode   int    // 0 when no HTTP answer came (timeout, refused, policy)
	ResponseBody string // the first MaxResponseBody bytes
	Error        string // "" on success
}

// MaxResponseBody is how much of a receiver's answer is kept (SPEC §2).
const MaxResponseBody = 4 << 10

// Delivery header names, SPEC §2.
const (
	HeaderEvent     = "X-CG-Hook-Event"
	HeaderDelivery  = "X-CG-Hook-Delivery"
	HeaderWebhookID = "X-CG-Hook-ID"
	HeaderAttempt   = "X-CG-Hook-Attempt"
	HeaderSignature = "X-CG-Hook-Signature"
)

// UserAgent is the User-Agent of every delivery.
func UserAgent() string { return "hookd/" + Version }

// DeliveryHeaders returns the headers of attempt number attempt of a
// delivery, except the signature, which needs the secret and the body.
//
// The keys are spelled as in SPEC §2 (X-CG-Hook-ID, not Go's canonical
// X-Cg-Hook-Id) and are sent that way. Header names are case-insensitive,
// but receivers and their logs then show the documented spelling. Add keys
// to the map by indexing it, not with Set, and read them with the
// constants below, not with Get, which would canonicalize.
func DeliveryHeaders(eventType, deliveryID, webhookID string, attempt int) http.Header {
	return http.Header{
		"Content-Type":  {"application/json"},
		"User-Agent":    {UserAgent()},
		HeaderEvent:     {eventType},
		HeaderDelivery:  {deliveryID},
		HeaderWebhookID: {webhookID},
		HeaderAttempt:   {strconv.Itoa(attempt)},
	}
}

// Job is a claimed delivery: what the dispatcher needs to make its next
// attempt. While the lease holds, no other dispatcher claims the delivery.
type Job struct {
	DeliveryID string
	WebhookID  string
	URL        string
	Secret     string // plaintext; "" when the webhook has none
	Event      *Event
	Attempt    int // number of the attempt to make: Delivery.Attempts+1
	RoundStart int // Delivery.RoundStart at claim time
	Lease      string
	LeaseUntil time.Time
}

// Retry returns which retry of its round the job's attempt is: 0 for the
// first attempt of a round, 1 for the first retry, and so on.
func (j *Job) Retry() int { return j.Attempt - j.RoundStart - 1 }

// AttemptResult is what the dispatcher reports after an attempt: the
// attempt to log and where the delivery goes next.
type AttemptResult struct {
	Job           *Job
	Attempt       Attempt
	Status        DeliveryStatus // delivered, pending (retry) or failed
	NextAttemptAt time.Time      // when Status is pending
}
