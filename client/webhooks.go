package client

import (
	"context"
	"net/url"
	"time"
)

// Webhook is an organization's webhook. The secret is never returned;
// HasSecret says whether one is set.
type Webhook struct {
	ID               string   `json:"id"`
	OrganizationID   string   `json:"organization_id"`
	Name             string   `json:"name"`
	URL              string   `json:"url"`
	Events           []string `json:"events"`
	Active           bool     `json:"active"`
	IncludeCustomers bool     `json:"include_customers"`
	HasSecret        bool     `json:"has_secret"`
	// DisabledReason says why hookd disabled the webhook automatically
	// after failed deliveries, and DisabledAt when; nil when it did not.
	DisabledReason *string    `json:"disabled_reason"`
	DisabledAt     *time.Time `json:"disabled_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// WebhookInput creates a webhook (nil pointers take the defaults: no
// secret, active, not including customers' events) or, for UpdateWebhook,
// changes the fields that are set. An empty Secret on update removes the
// secret.
type WebhookInput struct {
	Name             *string  `json:"name,omitempty"`
	URL              *string  `json:"url,omitempty"`
	Events           []string `json:"events,omitempty"`
	Secret           *string  `json:"secret,omitempty"`
	IncludeCustomers *bool    `json:"include_customers,omitempty"`
	Active           *bool    `json:"active,omitempty"`
}

// Ptr returns a pointer to v, for WebhookInput's optional fields.
func Ptr[T any](v T) *T { return &v }

// CreateWebhook creates a webhook of the key's organization.
func (c *Client) CreateWebhook(ctx context.Context, in WebhookInput) (*Webhook, error) {
	var w Webhook
	_, err := c.do(ctx, "POST", "/v1/webhooks", in, &w)
	return &w, err
}

// GetWebhook reads a webhook.
func (c *Client) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	var w Webhook
	_, err := c.do(ctx, "GET", "/v1/webhooks/"+url.PathEscape(id), nil, &w)
	return &w, err
}

// ListWebhooks reads a page of webhooks, newest first.
func (c *Client) ListWebhooks(ctx context.Context, opts ListOptions) (*Page[Webhook], error) {
	var p Page[Webhook]
	_, err := c.do(ctx, "GET", "/v1/webhooks"+opts.query(url.Values{}), nil, &p)
	return &p, err
}

// UpdateWebhook changes the fields set in in.
func (c *Client) UpdateWebhook(ctx context.Context, id string, in WebhookInput) (*Webhook, error) {
	var w Webhook
	_, err := c.do(ctx, "PATCH", "/v1/webhooks/"+url.PathEscape(id), in, &w)
	return &w, err
}

// DeleteWebhook deletes a webhook; its pending deliveries are not sent.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.do(ctx, "DELETE", "/v1/webhooks/"+url.PathEscape(id), nil, nil)
	return err
}

// EnableWebhook makes the webhook active again and clears why hookd
// disabled it. With redeliverFailed, the deliveries that failed while it
// was failing and disabled are sent again; it returns how many.
func (c *Client) EnableWebhook(ctx context.Context, id string, redeliverFailed bool) (*Webhook, int, error) {
	var out struct {
		Webhook     Webhook `json:"webhook"`
		Redelivered int     `json:"redelivered"`
	}
	in := struct {
		RedeliverFailed bool `json:"redeliver_failed"`
	}{redeliverFailed}
	_, err := c.do(ctx, "POST", "/v1/webhooks/"+url.PathEscape(id)+"/enable", in, &out)
	return &out.Webhook, out.Redelivered, err
}

// Ping sends a ping event to the webhook and returns the delivery's id.
func (c *Client) Ping(ctx context.Context, id string) (string, error) {
	var out struct {
		DeliveryID string `json:"delivery_id"`
	}
	_, err := c.do(ctx, "POST", "/v1/webhooks/"+url.PathEscape(id)+"/ping", nil, &out)
	return out.DeliveryID, err
}

// Delivery is one event going to one webhook.
type Delivery struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	WebhookID      string     `json:"webhook_id"`
	Status         string     `json:"status"` // pending, delivered or failed
	Attempts       int        `json:"attempts"`
	CreatedAt      time.Time  `json:"created_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
}

// DeliveryDetail is a delivery with its request and every attempt.
type DeliveryDetail struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	WebhookID      string     `json:"webhook_id"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	LastStatusCode *int       `json:"last_status_code"`
	Request        struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	} `json:"request"`
	Attempts []Attempt `json:"attempts"`
}

// Attempt is one HTTP request of a delivery and what came back.
type Attempt struct {
	Number       int       `json:"number"`
	StartedAt    time.Time `json:"started_at"`
	DurationMS   int64     `json:"duration_ms"`
	StatusCode   *int      `json:"status_code"`
	ResponseBody string    `json:"response_body"`
	Error        string    `json:"error"`
}

// ListDeliveries reads a page of a webhook's deliveries, newest first;
// status ("pending", "delivered", "failed") filters when not "".
func (c *Client) ListDeliveries(ctx context.Context, webhookID, status string, opts ListOptions) (*Page[Delivery], error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	var p Page[Delivery]
	_, err := c.do(ctx, "GET", "/v1/webhooks/"+url.PathEscape(webhookID)+"/deliveries"+opts.query(q), nil, &p)
	return &p, err
}

// GetDelivery reads a delivery with its request and attempts.
func (c *Client) GetDelivery(ctx context.Context, webhookID, id string) (*DeliveryDetail, error) {
	var d DeliveryDetail
	_, err := c.do(ctx, "GET", "/v1/webhooks/"+url.PathEscape(webhookID)+"/deliveries/"+url.PathEscape(id), nil, &d)
	return &d, err
}

// Redeliver makes a delivery pending again with a fresh set of retries.
func (c *Client) Redeliver(ctx context.Context, webhookID, id string) (*Delivery, error) {
	var d Delivery
	_, err := c.do(ctx, "POST", "/v1/webhooks/"+url.PathEscape(webhookID)+"/deliveries/"+url.PathEscape(id)+"/redeliver", nil, &d)
	return &d, err
}
