package web

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/hookd-dev/hookd"
)

// webhookJSON is SPEC §3's webhook object. The secret is never returned;
// has_secret says whether there is one.
type webhookJSON struct {
	ID               string   `json:"id"`
	OrganizationID   string   `json:"organization_id"`
	Name             string   `json:"name"`
	URL              string   `json:"url"`
	Events           []string `json:"events"`
	Active           bool     `json:"active"`
	IncludeCustomers bool     `json:"include_customers"`
	HasSecret        bool     `json:"has_secret"`
	// Null unless hookd disabled the webhook automatically (endpoint
	// health); a reason of its own, not "", so clients test one thing.
	DisabledReason *string    `json:"disabled_reason"`
	DisabledAt     *time.Time `json:"disabled_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func toWebhookJSON(w *hookd.Webhook) webhookJSON {
	events := w.Events
	if events == nil {
		events = []string{}
	}
	out := webhookJSON{
		ID:               w.ID,
		OrganizationID:   w.OrganizationID,
		Name:             w.Name,
		URL:              w.URL,
		Events:           events,
		Active:           w.Active,
		IncludeCustomers: w.IncludeCustomers,
		HasSecret:        w.Secret != "",
		CreatedAt:        w.CreatedAt.UTC(),
		UpdatedAt:        w.UpdatedAt.UTC(),
	}
	if !w.DisabledAt.IsZero() {
		reason, at := w.DisabledReason, w.DisabledAt.UTC()
		out.DisabledReason, out.DisabledAt = &reason, &at
	}
	return out
}

// POST /v1/webhooks {name, url, events, secret?, include_customers?, active?}
func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request, c caller) error {
	var in webhookInput
	if err := decodeBody(w, r, maxBodySize, &in); err != nil {
		return err
	}
	wh, err := s.createWebhook(r.Context(), c.orgID, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toWebhookJSON(wh))
	return nil
}

// GET /v1/webhooks
func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request, c caller) error {
	p, err := parsePage(r, hookd.PrefixWebhook)
	if err != nil {
		return err
	}
	webhooks, next, err := s.cfg.Store.ListWebhooks(r.Context(), c.orgID, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(webhooks, next, toWebhookJSON))
	return nil
}

// GET /v1/webhooks/{id}
func (s *Server) handleGetWebhook(w http.ResponseWriter, r *http.Request, c caller) error {
	wh, err := s.cfg.Store.FindWebhook(r.Context(), c.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(wh))
	return nil
}

// PATCH /v1/webhooks/{id}: any subset of the create fields.
func (s *Server) handleUpdateWebhook(w http.ResponseWriter, r *http.Request, c caller) error {
	var in webhookInput
	if err := decodeBody(w, r, maxBodySize, &in); err != nil {
		return err
	}
	wh, err := s.updateWebhook(r.Context(), c.orgID, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toWebhookJSON(wh))
	return nil
}

// DELETE /v1/webhooks/{id}
func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, c caller) error {
	if err := s.cfg.Store.DeleteWebhook(r.Context(), c.orgID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /v1/webhooks/{id}/ping
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request, c caller) error {
	d, err := s.ping(r.Context(), c.orgID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct {
		DeliveryID string `json:"delivery_id"`
	}{d.ID})
	return nil
}

// POST /v1/webhooks/{id}/enable {redeliver_failed?}: the body is optional.
func (s *Server) handleEnableWebhook(w http.ResponseWriter, r *http.Request, c caller) error {
	var in struct {
		RedeliverFailed *bool `json:"redeliver_failed"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
	if err != nil {
		return decodeError(err)
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(bytes.NewReader(body), &in); err != nil {
			return err
		}
	}
	wh, n, err := s.enableWebhook(r.Context(), c.orgID, r.PathValue("id"), in.RedeliverFailed != nil && *in.RedeliverFailed)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Webhook     webhookJSON `json:"webhook"`
		Redelivered int         `json:"redelivered"`
	}{toWebhookJSON(wh), n})
	return nil
}
