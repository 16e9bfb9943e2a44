package hookd

import (
	"net/url"
	"strings"
	"time"
)

// Webhook is one organization's subscription: where to POST which events.
type Webhook struct {
	ID               string
	OrganizationID   string
	Name             string
	URL              string
	Events           []string
	Secret           string // plaintext in memory; stores encrypt it at rest
	Active           bool
	IncludeCustomers bool
	CreatedAt        time.Time
	UpdatedAt        time.Time

	// DisabledReason says why the store disabled the webhook automatically
	// (see HealthPolicy), and DisabledAt when; "" and zero when it was not.
	// A disabled webhook is also inactive. Enabling it clears both.
	DisabledReason string
	DisabledAt     time.Time
	// ConsecutiveFailures is how many of its deliveries in a row have ended
	// failed, and FailingSince when the first failed attempt since its last
	// successful one was made (zero when the last attempt succeeded). The
	// store keeps them; callers cannot set them.
	ConsecutiveFailures int
	FailingSince        time.Time

	// LastDeliveryStatus is the status of the webhook's newest delivery ("" if
	// none). Stores fill it on reads for the portal's list; it is not stored.
	LastDeliveryStatus DeliveryStatus
}

// Limits of SPEC §3.
const (
	MaxWebhooksPerOrganization = 100
	MaxURLLen                  = 2048
	MaxSecretLen               = 256
)

// Validate checks the webhook's own fields: name, URL syntax, events and
// secret. allowHTTP permits http:// URLs (--allow-http). Rules that need
// other state are checked elsewhere: include_customers against the
// organization (ValidateIncludeCustomers), the target's addresses by the
// egress policy, the per-organization limit by the store.
func (w *Webhook) Validate(allowHTTP bool) error {
	if err := validateName("name", w.Name); err != nil {
		return err
	}
	if err := ValidateURL(w.URL, allowHTTP); err != nil {
		return err
	}
	if err := ValidateSubscription(w.Events); err != nil {
		return err
	}
	if len(w.Secret) > MaxSecretLen {
		return FieldErrorf("secret", "secret must be at most %d bytes", MaxSecretLen)
	}
	return nil
}

// ValidateIncludeCustomers refuses include_customers on an organization
// that is not a partner.
func (w *Webhook) ValidateIncludeCustomers(org *Organization) error {
	if w.IncludeCustomers && !org.IsPartner {
		return FieldErrorf("include_customers", "include_customers is only available to partner organizations")
	}
	return nil
}

// ValidateURL checks a target URL's syntax: absolute https:// (or http://
// when allowHTTP), a host, no user info, no fragment, at most 2048 bytes.
func ValidateURL(raw string, allowHTTP bool) error {
	if raw == "" {
		return FieldErrorf("url", "url is required")
	}
	if len(raw) > MaxURLLen {
		return FieldErrorf("url", "url must be at most %d characters", MaxURLLen)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return FieldErrorf("url", "url must not contain white space")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return FieldErrorf("url", "url is not a valid URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return FieldErrorf("url", "url must use https:// (http:// is not allowed on this server)")
	default:
		return FieldErrorf("url", "url must be an absolute https:// URL")
	}
	switch {
	case u.Opaque != "" || u.Hostname() == "":
		return FieldErrorf("url", "url must have a host")
	case u.User != nil:
		return FieldErrorf("url", "url must not contain user info")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return FieldErrorf("url", "url must not contain a fragment")
	}
	if p := u.Port(); p != "" {
		if n := atoiPort(p); n < 1 || n > 65535 {
			return FieldErrorf("url", "url has an invalid port")
		}
	}
	return nil
}

func atoiPort(s string) int {
	if len(s) > 5 {
		return -1
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// ValidateSubscription checks a webhook's events: a non-empty list of
// catalog types without duplicates; ping is not subscribable.
func ValidateSubscription(events []string) error {
	if len(events) == 0 {
		return FieldErrorf("events", "events must list at least one event type")
	}
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		switch {
		case e == EventPing:
			return FieldErrorf("events", "ping cannot be subscribed to; it is sent only by the ping endpoint")
		case LookupEventType(e) == nil:
			return FieldErrorf("events", "unknown event type %q", e)
		case seen[e]:
			return FieldErrorf("events", "event type %q is listed twice", e)
		}
		seen[e] = true
	}
	return nil
}

// Subscribes reports whether the webhook receives events of type t.
func (w *Webhook) Subscribes(t string) bool {
	for _, e := range w.Events {
		if e == t {
			return true
		}
	}
	return false
}
