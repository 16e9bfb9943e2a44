package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// EventInput is an event to publish. Data is marshalled as the event's
// data object; ID, when set, makes publishing idempotent.
type EventInput struct {
	ID             string `json:"id,omitempty"`
	OrganizationID string `json:"organization_id"`
	Type           string `json:"type"`
	Data           any    `json:"data"`
}

// Event is a published event.
type Event struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	OrganizationID string    `json:"organization_id"`
	CreatedAt      time.Time `json:"created_at"`
	Deliveries     int       `json:"deliveries"` // deliveries created
}

// Publish publishes one event (admin). created is false when an event with
// the same id had been published for the organization before; then the
// first event is returned and nothing new is delivered.
func (c *Client) Publish(ctx context.Context, in EventInput) (ev *Event, created bool, err error) {
	var e Event
	status, err := c.do(ctx, "POST", "/v1/events", in, &e)
	return &e, status == http.StatusAccepted, err
}

// PublishBatch publishes up to 1000 events in one transaction (admin): all
// or nothing. Results are in the order of the input.
func (c *Client) PublishBatch(ctx context.Context, in []EventInput) ([]Event, error) {
	var out struct {
		Data []Event `json:"data"`
	}
	_, err := c.do(ctx, "POST", "/v1/events/batch", map[string]any{"events": in}, &out)
	return out.Data, err
}

// EventType is an entry of the event catalog.
type EventType struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema,omitempty"`  // only from EventType
	Example     json.RawMessage `json:"example,omitempty"` // only from EventType
}

// EventTypes lists the catalog.
func (c *Client) EventTypes(ctx context.Context) ([]EventType, error) {
	var out struct {
		Data []EventType `json:"data"`
	}
	_, err := c.do(ctx, "GET", "/v1/event-types", nil, &out)
	return out.Data, err
}

// EventType reads one catalog entry with its JSON Schema and an example.
func (c *Client) EventType(ctx context.Context, name string) (*EventType, error) {
	var t EventType
	_, err := c.do(ctx, "GET", "/v1/event-types/"+url.PathEscape(name), nil, &t)
	return &t, err
}
