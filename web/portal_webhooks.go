package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookd-dev/hookd"
)

// The webhook pages of the portal. Each form handler turns the form into
// the webhookInput the JSON API decodes and calls the same operation
// (ops.go), so the rules and their messages are the API's.

// webhookForm is the Add Webhook form and the edit form: what the user
// typed, and the error of each field.
type webhookForm struct {
	Action string // where the form posts
	Submit string // the label of its button
	Cancel string // where Cancel leads

	Name             string
	URL              string
	Events           map[string]bool
	Secret           string
	IncludeCustomers bool
	RemoveSecret     bool

	ShowIncludeCustomers bool // partners only (SPEC §4)
	Editing              bool
	HasSecret            bool              // editing a webhook that has a secret
	Errors               map[string]string // by field; "" for the form as a whole
}

// formFields are the fields the form shows an error next to; an error
// about any other field is shown at the top of the form.
var formFields = map[string]string{
	"name":              "Name",
	"url":               "Target URL",
	"events":            "Events",
	"secret":            "Secret",
	"include_customers": "Include Customers' Events",
}

// EventTypes are the catalog's types a webhook can subscribe to, in the
// catalog's order: every type but ping.
func (f *webhookForm) EventTypes() []*hookd.EventType {
	var out []*hookd.EventType
	for _, t := range hookd.Catalog() {
		if t.Name != hookd.EventPing {
			out = append(out, t)
		}
	}
	return out
}

// setError places err next to its field. The domain's messages name the
// API's fields ("url must use https://"); the form says it with the
// field's label ("Target URL must use https://").
func (f *webhookForm) setError(err error) {
	field, msg := hookd.ErrorField(err), hookd.ErrorMessage(err)
	label, ok := formFields[field]
	if ok {
		if rest, cut := strings.CutPrefix(msg, field+" "); cut {
			msg = label + " " + rest
		}
	}
	if !ok || (field == "include_customers" && !f.ShowIncludeCustomers) {
		field = "" // no such field on the form: the error goes on top
	}
	f.Errors = map[string]string{field: msg}
}

// readWebhookForm reads a posted webhook form into f.
func readWebhookForm(w http.ResponseWriter, r *http.Request, f *webhookForm) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodySize)
	if err := r.ParseForm(); err != nil {
		return hookd.Errorf(hookd.EINVALID, "the form could not be read")
	}
	pf := r.PostForm
	f.Name = strings.TrimSpace(pf.Get("name"))
	f.URL = strings.TrimSpace(pf.Get("url")) // a pasted URL often brings a space or a newline
	f.Secret = pf.Get("secret")
	f.IncludeCustomers = pf.Get("include_customers") != ""
	f.RemoveSecret = pf.Get("remove_secret") != ""
	f.Events = map[string]bool{}
	for _, e := range pf["events"] {
		f.Events[e] = true
	}
	return nil
}

// input is the form as the API would have received it.
func (f *webhookForm) input(events []string) webhookInput {
	in := webhookInput{Name: &f.Name, URL: &f.URL, Events: &events}
	switch {
	case f.Secret != "":
		in.Secret = &f.Secret
	case f.RemoveSecret:
		in.Secret = new(string)
	}
	// Only a partner sees the box, but a posted value is always passed on:
	// a forged include_customers from a non-partner meets the API's rule.
	if f.ShowIncludeCustomers || f.IncludeCustomers {
		in.IncludeCustomers = &f.IncludeCustomers
	}
	return in
}

// webhookListPage is My Settings → Webhooks.
type webhookListPage struct {
	view
	Webhooks []*hookd.Webhook
}

// GET /: the portal's front page is the webhook list (or the sign-in page).
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request, _ *visitor) error {
	http.Redirect(w, r, "/settings/webhooks", http.StatusSeeOther)
	return nil
}

// settingsPage is My Settings: the account and its sections.
type settingsPage struct {
	view
	Webhooks int
}

// GET /settings
func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request, v *visitor) error {
	list, _, err := s.cfg.Store.ListWebhooks(r.Context(), v.Org.ID, hookd.Page{Limit: hookd.MaxWebhooksPerOrganization})
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "settings", &settingsPage{
		view:     view{Title: "My Settings", Me: v, Section: "settings"},
		Webhooks: len(list),
	})
	return nil
}

// GET /settings/webhooks: every webhook of the organization (at most
// hookd.MaxWebhooksPerOrganization, so one page).
func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request, v *visitor) error {
	list, _, err := s.cfg.Store.ListWebhooks(r.Context(), v.Org.ID, hookd.Page{Limit: hookd.MaxWebhooksPerOrganization})
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "webhooks", &webhookListPage{view: webhooksView(v, "Webhooks"), Webhooks: list})
	return nil
}

// webhooksView is the frame of the pages under My Settings → Webhooks.
func webhooksView(v *visitor, title string, crumbs ...crumb) view {
	all := append([]crumb{{"My Settings", "/settings"}, {"Webhooks", "/settings/webhooks"}}, crumbs...)
	all[len(all)-1].URL = "" // the page itself
	return view{Title: title, Me: v, Section: "webhooks", Crumbs: all}
}

// newWebhookPage is the Add Webhook form.
type newWebhookPage struct {
	view
	Form *webhookForm
}

func newWebhookForm(v *visitor) *webhookForm {
	return &webhookForm{
		Action: "/settings/webhooks/new", Submit: "Add Webhook", Cancel: "/settings/webhooks",
		Events: map[string]bool{}, ShowIncludeCustomers: v.Org.IsPartner,
	}
}

// GET /settings/webhooks/new
func (s *Server) handleNewWebhookForm(w http.ResponseWriter, r *http.Request, v *visitor) error {
	s.render(w, r, http.StatusOK, "webhook_new", &newWebhookPage{
		view: webhooksView(v, "Add Webhook", crumb{"Add Webhook", ""}), Form: newWebhookForm(v),
	})
	return nil
}

// POST /settings/webhooks/new {name, url, events…, secret, include_customers}
func (s *Server) handleAddWebhook(w http.ResponseWriter, r *http.Request, v *visitor) error {
	f := newWebhookForm(v)
	if err := readWebhookForm(w, r, f); err != nil {
		return err
	}
	wh, err := s.createWebhook(r.Context(), v.Org.ID, f.input(r.PostForm["events"]))
	if hookd.ErrorCode(err) == hookd.EINVALID {
		f.setError(err)
		s.render(w, r, http.StatusUnprocessableEntity, "webhook_new", &newWebhookPage{
			view: webhooksView(v, "Add Webhook", crumb{"Add Webhook", ""}), Form: f,
		})
		return nil
	} else if err != nil {
		return err
	}
	redirectWithFlash(w, r, "/settings/webhooks", "Webhook “"+wh.Name+"” added.")
	return nil
}

// webhookPage is one webhook: its state, actions, recent deliveries and
// the edit form.
type webhookPage struct {
	view
	Webhook    *hookd.Webhook
	Form       *webhookForm
	Deliveries []deliveryRow
	Older      string // the next page of deliveries; "" on the last
	Newer      bool   // this is not the first page
}

// deliveryRow is a delivery in the list, with its latest attempt's duration.
type deliveryRow struct {
	*hookd.Delivery
	Duration *time.Duration // nil before the first attempt
}

// deliveriesPerPage is short: each row costs a read of its attempts (for
// the duration), and people look at the latest deliveries first.
const deliveriesPerPage = 20

func editForm(v *visitor, wh *hookd.Webhook) *webhookForm {
	f := &webhookForm{
		Action: "/settings/webhooks/" + wh.ID, Submit: "Save changes", Cancel: "/settings/webhooks/" + wh.ID,
		Name: wh.Name, URL: wh.URL, Events: map[string]bool{}, IncludeCustomers: wh.IncludeCustomers,
		// A webhook that has the option keeps the box even if its
		// organization stopped being a partner, so it can be turned off.
		ShowIncludeCustomers: v.Org.IsPartner || wh.IncludeCustomers,
		Editing:              true, HasSecret: wh.Secret != "",
	}
	for _, e := range wh.Events {
		f.Events[e] = true
	}
	return f
}

// GET /settings/webhooks/{id}?cursor=
func (s *Server) handleWebhookPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	wh, err := s.cfg.Store.FindWebhook(r.Context(), v.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	return s.renderWebhookPage(w, r, v, wh, editForm(v, wh), http.StatusOK)
}

func (s *Server) renderWebhookPage(w http.ResponseWriter, r *http.Request, v *visitor, wh *hookd.Webhook, f *webhookForm, status int) error {
	ctx := r.Context()
	p := &webhookPage{view: webhooksView(v, wh.Name, crumb{wh.Name, ""}), Webhook: wh, Form: f}
	page := hookd.Page{Limit: deliveriesPerPage}
	if c := r.URL.Query().Get("cursor"); c != "" {
		if id, ok := decodeCursor(c, hookd.PrefixDelivery); ok {
			page.After, p.Newer = id, true
		}
	}
	list, next, err := s.cfg.Store.ListDeliveries(ctx, v.Org.ID, wh.ID, "", page)
	if err != nil {
		return err
	}
	for _, d := range list {
		row := deliveryRow{Delivery: d}
		if d.Attempts > 0 {
			full, err := s.cfg.Store.FindDelivery(ctx, v.Org.ID, wh.ID, d.ID)
			switch {
			case hookd.ErrorCode(err) == hookd.ENOTFOUND:
				continue // deleted meanwhile
			case err != nil:
				return err
			}
			if n := len(full.AttemptLog); n > 0 {
				row.Duration = &full.AttemptLog[n-1].Duration
			}
		}
		p.Deliveries = append(p.Deliveries, row)
	}
	if next != "" {
		p.Older = "/settings/webhooks/" + wh.ID + "?cursor=" + encodeCursor(next) + "#deliveries"
	}
	s.render(w, r, status, "webhook", p)
	return nil
}

// POST /settings/webhooks/{id} {name, url, events…, secret, remove_secret, include_customers}
func (s *Server) handleEditWebhook(w http.ResponseWriter, r *http.Request, v *visitor) error {
	cur, err := s.cfg.Store.FindWebhook(r.Context(), v.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	f := editForm(v, cur)
	if err := readWebhookForm(w, r, f); err != nil {
		return err
	}
	wh, err := s.updateWebhook(r.Context(), v.Org.ID, cur.ID, f.input(r.PostForm["events"]))
	if hookd.ErrorCode(err) == hookd.EINVALID {
		f.setError(err)
		return s.renderWebhookPage(w, r, v, cur, f, http.StatusUnprocessableEntity)
	} else if err != nil {
		return err
	}
	redirectWithFlash(w, r, "/settings/webhooks/"+wh.ID, "Changes saved.")
	return nil
}

// POST /settings/webhooks/{id}/active {active: true|false}
func (s *Server) handleSetActive(w http.ResponseWriter, r *http.Request, v *visitor) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodySize)
	if err := r.ParseForm(); err != nil {
		return hookd.Errorf(hookd.EINVALID, "the form could not be read")
	}
	active := r.PostForm.Get("active") == "true"
	wh, err := s.updateWebhook(r.Context(), v.Org.ID, r.PathValue("id"), webhookInput{Active: &active})
	if err != nil {
		return err
	}
	msg := "Webhook deactivated: it receives no events until you activate it again."
	if wh.Active {
		msg = "Webhook activated."
	}
	redirectWithFlash(w, r, "/settings/webhooks/"+wh.ID, msg)
	return nil
}

// POST /settings/webhooks/{id}/enable {redeliver_failed: 1?}: re-enable a
// webhook hookd disabled, optionally sending again what failed meanwhile.
func (s *Server) handleEnableForm(w http.ResponseWriter, r *http.Request, v *visitor) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodySize)
	if err := r.ParseForm(); err != nil {
		return hookd.Errorf(hookd.EINVALID, "the form could not be read")
	}
	wh, n, err := s.enableWebhook(r.Context(), v.Org.ID, r.PathValue("id"), r.PostForm.Get("redeliver_failed") == "1")
	if err != nil {
		return err
	}
	msg := "Webhook enabled again: new events are sent to it."
	switch {
	case n == 1:
		msg += " 1 failed delivery is being sent again."
	case n > 1:
		msg += fmt.Sprintf(" %d failed deliveries are being sent again.", n)
	}
	redirectWithFlash(w, r, "/settings/webhooks/"+wh.ID, msg)
	return nil
}

// deletePage asks to confirm a deletion.
type deletePage struct {
	view
	Webhook *hookd.Webhook
}

// GET /settings/webhooks/{id}/delete: the confirmation step.
func (s *Server) handleDeleteForm(w http.ResponseWriter, r *http.Request, v *visitor) error {
	wh, err := s.cfg.Store.FindWebhook(r.Context(), v.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "webhook_delete", &deletePage{
		view:    webhooksView(v, "Delete "+wh.Name, crumb{wh.Name, "/settings/webhooks/" + wh.ID}, crumb{"Delete", ""}),
		Webhook: wh,
	})
	return nil
}

// POST /settings/webhooks/{id}/delete
func (s *Server) handleConfirmDelete(w http.ResponseWriter, r *http.Request, v *visitor) error {
	wh, err := s.cfg.Store.FindWebhook(r.Context(), v.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteWebhook(r.Context(), v.Org.ID, wh.ID); err != nil {
		return err
	}
	redirectWithFlash(w, r, "/settings/webhooks", "Webhook “"+wh.Name+"” deleted.")
	return nil
}

// POST /settings/webhooks/{id}/ping
func (s *Server) handleSendPing(w http.ResponseWriter, r *http.Request, v *visitor) error {
	d, err := s.ping(r.Context(), v.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	redirectWithFlash(w, r, "/settings/webhooks/"+d.WebhookID,
		"Test event sent. Its delivery is listed under Recent deliveries; reload to see its result.")
	return nil
}
