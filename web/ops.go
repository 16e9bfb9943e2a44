package web

import (
	"context"
	"errors"
	"net/http"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/signature"
)

// This file holds the operations behind the endpoints, with every check
// they need, apart from HTTP: the JSON handlers and the portal's form
// handlers both call them, so a rule cannot be enforced in one front end
// and forgotten in the other.

// webhookInput is what a caller may set on a webhook. On create, nil
// fields take their defaults (active true, no secret, include_customers
// false); on update, nil fields are left as they are and an empty Secret
// removes the secret.
type webhookInput struct {
	Name             *string   `json:"name"`
	URL              *string   `json:"url"`
	Events           *[]string `json:"events"`
	Secret           *string   `json:"secret"`
	IncludeCustomers *bool     `json:"include_customers"`
	Active           *bool     `json:"active"`
}

func (in *webhookInput) empty() bool { return *in == webhookInput{} }

func (in *webhookInput) applyTo(w *hookd.Webhook) {
	if in.Name != nil {
		w.Name = *in.Name
	}
	if in.URL != nil {
		w.URL = *in.URL
	}
	if in.Events != nil {
		w.Events = append([]string{}, *in.Events...)
	}
	if in.Secret != nil {
		w.Secret = *in.Secret
	}
	if in.IncludeCustomers != nil {
		w.IncludeCustomers = *in.IncludeCustomers
	}
	if in.Active != nil {
		w.Active = *in.Active
	}
}

// createWebhook creates a webhook of organization orgID after checking its
// fields, include_customers against the organization, and the target
// against the network policy. EINVALID naming the field; EINVALID without
// a field when the organization has its maximum of webhooks.
func (s *Server) createWebhook(ctx context.Context, orgID string, in webhookInput) (*hookd.Webhook, error) {
	org, err := s.cfg.Store.FindOrganization(ctx, orgID)
	if err != nil {
		return nil, err
	}
	w := &hookd.Webhook{OrganizationID: orgID, Active: true}
	in.applyTo(w)
	if err := s.validateWebhook(w, org); err != nil {
		return nil, err
	}
	if err := s.checkTarget(ctx, w.URL); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.CreateWebhook(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

// updateWebhook applies in to webhook id of orgID. The merged webhook is
// checked as a whole, first here (so the network check runs outside the
// store's transaction, which must not wait on DNS), then again inside the
// transaction against the row as it is then. The target is checked against
// the network policy only when the URL changes. ENOTFOUND; EINVALID.
func (s *Server) updateWebhook(ctx context.Context, orgID, id string, in webhookInput) (*hookd.Webhook, error) {
	cur, err := s.cfg.Store.FindWebhook(ctx, orgID, id)
	if err != nil || in.empty() {
		return cur, err
	}
	merged := *cur
	in.applyTo(&merged)
	org, err := s.cfg.Store.FindOrganization(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if err := s.validateWebhook(&merged, org); err != nil {
		return nil, err
	}
	if merged.URL != cur.URL {
		if err := s.checkTarget(ctx, merged.URL); err != nil {
			return nil, err
		}
	}
	return s.cfg.Store.UpdateWebhook(ctx, orgID, id, func(w *hookd.Webhook) error {
		in.applyTo(w)
		return s.validateWebhook(w, org)
	})
}

// validateWebhook checks what needs no network: the webhook's own fields
// and include_customers against its organization.
func (s *Server) validateWebhook(w *hookd.Webhook, org *hookd.Organization) error {
	if err := w.Validate(s.cfg.AllowHTTP); err != nil {
		return err
	}
	return w.ValidateIncludeCustomers(org)
}

// checkTarget asks the network policy about a target URL. A refusal is
// EINVALID on "url". The policy's own messages name no address; any other
// refusal gets a generic one, so that the API cannot be used to map which
// names resolve to internal addresses.
func (s *Server) checkTarget(ctx context.Context, rawURL string) error {
	if s.cfg.Targets == nil {
		return nil
	}
	err := s.cfg.Targets.CheckURL(ctx, rawURL)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	var herr *hookd.Error
	if errors.As(err, &herr) && herr.Code == hookd.EINVALID {
		return hookd.FieldErrorf("url", "%s", herr.Message)
	}
	return hookd.FieldErrorf("url", "url's host is not an allowed target")
}

// ping sends a ping event to one webhook and wakes the dispatcher.
// ENOTFOUND.
func (s *Server) ping(ctx context.Context, orgID, webhookID string) (*hookd.Delivery, error) {
	d, err := s.cfg.Store.CreatePing(ctx, orgID, webhookID)
	if err != nil {
		return nil, err
	}
	s.notify()
	return d, nil
}

// redeliver makes a delivery pending again with a fresh round of retries
// and wakes the dispatcher. ENOTFOUND.
func (s *Server) redeliver(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error) {
	d, err := s.cfg.Store.Redeliver(ctx, orgID, webhookID, deliveryID)
	if err != nil {
		return nil, err
	}
	s.notify()
	return d, nil
}

// enableWebhook makes a webhook active again and clears why it was
// disabled; with redeliverFailed, the deliveries that failed while it was
// failing and disabled are made pending again, and the dispatcher woken.
// ENOTFOUND.
func (s *Server) enableWebhook(ctx context.Context, orgID, id string, redeliverFailed bool) (*hookd.Webhook, int, error) {
	w, n, err := s.cfg.Store.EnableWebhook(ctx, orgID, id, redeliverFailed)
	if err != nil {
		return nil, 0, err
	}
	if n > 0 {
		s.notify()
	}
	return w, n, nil
}

// validateEvent checks an event as published (and compacts its data); with
// ValidateEvents, its data against the type's JSON Schema too.
func (s *Server) validateEvent(e *hookd.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if s.cfg.ValidateEvents {
		return hookd.LookupEventType(e.Type).ValidateData(e.Data)
	}
	return nil
}

// publish stores already validated events in one transaction and, when
// that created deliveries, wakes the dispatcher. ENOTFOUND (field
// organization_id).
func (s *Server) publish(ctx context.Context, events []*hookd.Event) (results []hookd.PublishResult, err error) {
	if s.tracer != nil {
		var span trace.Span
		ctx, span = s.startFanout(ctx, events)
		defer func() { endFanout(span, results, err) }()
	}
	results, err = s.cfg.Store.PublishEvents(ctx, events)
	if err != nil {
		return nil, err
	}
	for _, res := range results {
		if res.Created && res.Event.Deliveries > 0 {
			s.notify()
			break
		}
	}
	return results, nil
}

// deliveryRequest returns the request of a delivery as sent on its latest
// attempt, or as it will be sent on attempt 1 when none was made: the
// headers of SPEC §2, signed with the webhook's current secret, and the body.
// d must come from FindDelivery (Event filled).
func (s *Server) deliveryRequest(ctx context.Context, orgID string, d *hookd.Delivery) (http.Header, []byte, error) {
	w, err := s.cfg.Store.FindWebhook(ctx, orgID, d.WebhookID)
	if err != nil {
		return nil, nil, err
	}
	attempt := max(d.Attempts, 1)
	body := d.Event.Payload(d.WebhookID)
	h := hookd.DeliveryHeaders(d.EventType, d.ID, d.WebhookID, attempt)
	if w.Secret != "" {
		h[hookd.HeaderSignature] = []string{signature.Sign(w.Secret, body)} // indexed: keep SPEC §2's spelling
	}
	return h, body, nil
}
