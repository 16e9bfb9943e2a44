package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/hookd-dev/hookd"
)

// deliveryPage is one delivery: the request hookd sends and every
// attempt's response.
type deliveryPage struct {
	view
	Webhook  *hookd.Webhook
	Delivery *hookd.Delivery
	Headers  []header
	Body     string
	Attempts []*hookd.Attempt // newest first
}

type header struct{ Name, Value string }

// GET /settings/webhooks/{id}/deliveries/{delivery_id}
func (s *Server) handleDeliveryPage(w http.ResponseWriter, r *http.Request, v *visitor) error {
	ctx := r.Context()
	wh, err := s.cfg.Store.FindWebhook(ctx, v.Org.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	d, err := s.cfg.Store.FindDelivery(ctx, v.Org.ID, wh.ID, r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	hdr, body, err := s.deliveryRequest(ctx, v.Org.ID, d)
	if err != nil {
		return err
	}
	p := &deliveryPage{
		view:     webhooksView(v, "Delivery "+d.ID, crumb{wh.Name, "/settings/webhooks/" + wh.ID}, crumb{d.ID, ""}),
		Webhook:  wh,
		Delivery: d,
		Body:     prettyJSON(body),
		Attempts: slices.Clone(d.AttemptLog),
	}
	slices.Reverse(p.Attempts)
	for name, values := range hdr {
		p.Headers = append(p.Headers, header{name, strings.Join(values, ", ")})
	}
	slices.SortFunc(p.Headers, func(a, b header) int { return strings.Compare(a.Name, b.Name) })
	s.render(w, r, http.StatusOK, "delivery", p)
	return nil
}

// prettyJSON indents a delivery body for reading. The bytes sent (and
// signed) are the compact form; the page says so.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}

// POST /settings/webhooks/{id}/deliveries/{delivery_id}/redeliver
func (s *Server) handleRedeliverForm(w http.ResponseWriter, r *http.Request, v *visitor) error {
	d, err := s.redeliver(r.Context(), v.Org.ID, r.PathValue("id"), r.PathValue("delivery_id"))
	if err != nil {
		return err
	}
	redirectWithFlash(w, r, "/settings/webhooks/"+d.WebhookID+"/deliveries/"+d.ID,
		"Redelivery queued: the next attempt appears below; reload to see its result.")
	return nil
}
