package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/hookd-dev/hookd"
)

// eventInput is one event as the platform publishes it.
type eventInput struct {
	ID             string          `json:"id"`
	OrganizationID string          `json:"organization_id"`
	Type           string          `json:"type"`
	Data           json.RawMessage `json:"data"`
}

func (in *eventInput) event() *hookd.Event {
	return &hookd.Event{ID: in.ID, OrganizationID: in.OrganizationID, Type: in.Type, Data: in.Data}
}

// eventJSON is the answer to a publish: the stored event without its data,
// and how many deliveries it created when it was first published.
type eventJSON struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	OrganizationID string    `json:"organization_id"`
	CreatedAt      time.Time `json:"created_at"`
	Deliveries     int       `json:"deliveries"`
}

func toEventJSON(res hookd.PublishResult) eventJSON {
	e := res.Event
	return eventJSON{ID: e.ID, Type: e.Type, OrganizationID: e.OrganizationID, CreatedAt: e.CreatedAt.UTC(), Deliveries: e.Deliveries}
}

// POST /v1/events {organization_id, type, data, id?}: 202 when the event is
// new, 200 with the first event when its id was published before.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request, _ caller) error {
	var in eventInput
	if err := decodeBody(w, r, maxEventBodySize, &in); err != nil {
		return err
	}
	e := in.event()
	if err := s.validateEvent(e); err != nil {
		return err
	}
	results, err := s.publish(r.Context(), []*hookd.Event{e})
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if !results[0].Created {
		status = http.StatusOK
	}
	writeJSON(w, status, toEventJSON(results[0]))
	return nil
}

// POST /v1/events/batch {events:[…]}: all or nothing. Every error is on the
// field "events" and its message names the event's index.
func (s *Server) handlePublishBatch(w http.ResponseWriter, r *http.Request, _ caller) error {
	body, err := readBody(w, r, maxBatchBodySize)
	if err != nil {
		return err
	}
	events, err := s.batchEvents(body)
	if err != nil {
		return err
	}
	results, err := s.publish(r.Context(), events)
	if hookd.ErrorCode(err) == hookd.ENOTFOUND {
		return s.batchNotFound(r.Context(), events, err)
	} else if err != nil {
		return err
	}
	out := struct {
		Data []eventJSON `json:"data"`
	}{make([]eventJSON, len(results))}
	for i, res := range results {
		out.Data[i] = toEventJSON(res)
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// batchEvents decodes and validates the events of a batch's body.
//
// A well-formed batch is decoded in one pass. Only when that fails does
// batchEventsOneByOne decode the events one at a time, to name the event
// at fault; both decode with the same rules, so they accept the same
// batches and report the same first error.
func (s *Server) batchEvents(body []byte) ([]*hookd.Event, error) {
	var in struct {
		Events *[]*eventInput `json:"events"`
	}
	if decodeStrict(bytes.NewReader(body), &in) != nil || in.Events == nil ||
		len(*in.Events) == 0 || len(*in.Events) > hookd.MaxBatchEvents || slices.Contains(*in.Events, nil) { // nil: a JSON null
		return s.batchEventsOneByOne(body)
	}
	events := make([]*hookd.Event, len(*in.Events))
	for i, ein := range *in.Events {
		events[i] = ein.event()
		if err := s.validateEvent(events[i]); err != nil {
			return nil, batchError(i, err)
		}
	}
	return events, nil
}

// batchEventsOneByOne is batchEvents for a batch that may be wrong: it
// decodes each event on its own, so that an error names its index.
func (s *Server) batchEventsOneByOne(body []byte) ([]*hookd.Event, error) {
	var in struct {
		Events *[]json.RawMessage `json:"events"`
	}
	if err := decodeStrict(bytes.NewReader(body), &in); err != nil {
		return nil, err
	}
	switch {
	case in.Events == nil:
		return nil, hookd.FieldErrorf("events", "events is required")
	case len(*in.Events) == 0 || len(*in.Events) > hookd.MaxBatchEvents:
		return nil, hookd.FieldErrorf("events", "events must list 1 to %d events", hookd.MaxBatchEvents)
	}
	events := make([]*hookd.Event, len(*in.Events))
	for i, raw := range *in.Events {
		if b := bytes.TrimSpace(raw); len(b) == 0 || b[0] != '{' {
			return nil, batchError(i, hookd.Errorf(hookd.EINVALID, "an event must be a JSON object"))
		}
		var ein eventInput
		if err := decodeStrict(bytes.NewReader(raw), &ein); err != nil {
			return nil, batchError(i, err)
		}
		events[i] = ein.event()
		if err := s.validateEvent(events[i]); err != nil {
			return nil, batchError(i, err)
		}
	}
	return events, nil
}

// batchError moves the error of event i to the field "events", SPEC §3's
// top-level field, keeping its code and naming the event and its own field
// in the message: events[3]: type: unknown event type "x".
func batchError(i int, err error) error {
	var herr *hookd.Error
	if !errors.As(err, &herr) {
		return err
	}
	msg := fmt.Sprintf("events[%d]: %s", i, herr.Message)
	if herr.Field != "" {
		msg = fmt.Sprintf("events[%d]: %s: %s", i, herr.Field, herr.Message)
	}
	return &hookd.Error{Code: herr.Code, Message: msg, Field: "events"}
}

// batchNotFound finds which event named an unknown organization, for the
// message. It runs only after the store refused the batch, so the common
// path costs no extra reads.
func (s *Server) batchNotFound(ctx context.Context, events []*hookd.Event, storeErr error) error {
	checked := map[string]bool{}
	for i, e := range events {
		if checked[e.OrganizationID] {
			continue
		}
		checked[e.OrganizationID] = true
		_, err := s.cfg.Store.FindOrganization(ctx, e.OrganizationID)
		if hookd.ErrorCode(err) == hookd.ENOTFOUND {
			return &hookd.Error{Code: hookd.ENOTFOUND, Field: "events",
				Message: fmt.Sprintf("events[%d]: organization_id: organization %q not found", i, e.OrganizationID)}
		} else if err != nil {
			return err
		}
	}
	// Every organization exists now (one was created meanwhile): report
	// the store's words, without an index.
	return &hookd.Error{Code: hookd.ENOTFOUND, Field: "events", Message: hookd.ErrorMessage(storeErr)}
}

// eventTypeJSON is an entry of the catalog; schema and example appear only
// when one type is read.
type eventTypeJSON struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Example     json.RawMessage `json:"example,omitempty"`
}

// GET /v1/event-types
func (s *Server) handleListEventTypes(w http.ResponseWriter, r *http.Request, _ caller) error {
	var out struct {
		Data []eventTypeJSON `json:"data"`
	}
	for _, t := range hookd.Catalog() {
		out.Data = append(out.Data, eventTypeJSON{Name: t.Name, Description: t.Description})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /v1/event-types/{name}
func (s *Server) handleGetEventType(w http.ResponseWriter, r *http.Request, _ caller) error {
	t := hookd.LookupEventType(r.PathValue("name"))
	if t == nil {
		return hookd.Errorf(hookd.ENOTFOUND, "event type %q not found", r.PathValue("name"))
	}
	writeJSON(w, http.StatusOK, eventTypeJSON{Name: t.Name, Description: t.Description, Schema: t.Schema, Example: t.Example})
	return nil
}
