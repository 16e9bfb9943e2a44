package web

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/hookd-dev/hookd"
)

// benchBatchBody is a batch of 100 events of about 1 KiB of data each, the
// shape hookd bench publishes.
func benchBatchBody(b *testing.B) []byte {
	b.Helper()
	type event struct {
		OrganizationID string         `json:"organization_id"`
		Type           string         `json:"type"`
		Data           map[string]any `json:"data"`
	}
	var in struct {
		Events []event `json:"events"`
	}
	for i := range 100 {
		in.Events = append(in.Events, event{OrganizationID: "org_01bench", Type: "scan_completed", Data: map[string]any{
			"scan_id": "scn_" + strconv.Itoa(i), "target": "bench.example", "completed_at": "2026-11-26T10:00:00Z", "pad": strings.Repeat("x", 800)}})
	}
	body, err := json.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkBatchEvents decodes and validates a batch of 100 events: in
// one pass (a well-formed batch), and one event at a time (what a batch
// with an error takes, and what every batch took before).
func BenchmarkBatchEvents(b *testing.B) {
	body := benchBatchBody(b)
	s := &Server{}
	for _, tc := range []struct {
		name string
		fn   func([]byte) (int, error)
	}{
		{"OnePass", func(body []byte) (int, error) { e, err := s.batchEvents(body); return len(e), err }},
		{"OneByOne", func(body []byte) (int, error) { e, err := s.batchEventsOneByOne(body); return len(e), err }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if n, err := tc.fn(body); err != nil || n != 100 {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestBatchEvents_OnePassAgrees checks that the one-pass decoding of a
// batch accepts what decoding event by event accepts, with the same
// events, and refuses the rest with the same error.
func TestBatchEvents_OnePassAgrees(t *testing.T) {
	s := &Server{}
	ev := `{"organization_id":"org_1","type":"scan_completed","data":{"a": [1, 2]}}`
	for _, body := range []string{
		`{"events":[` + ev + `]}`,
		`{"events":[` + ev + `,` + ev + `]}`,
		`{"events":[` + ev + `,null]}`,
		`{"events":[` + ev + `,[]]}`,
		`{"events":[` + ev + `,"x"]}`,
		`{"events":[` + ev + `,{"organization_id":"org_1","type":"scan_completed","data":{},"extra":1}]}`,
		`{"events":[{"Organization_ID":"org_1","TYPE":"scan_completed","data":{}}]}`,
		`{"events":[{"organization_id":"org_1","type":"scan_completed","data":[]}]}`,
		`{"events":[{"organization_id":"org_1","type":"nope","data":{}},{"organization_id":1}]}`,
		`{"events":[{"organization_id":"org_1","type":"scan_completed"}]}`,
		`{"events":[]}`,
		`{"events":null}`,
		`{}`,
		`{"events":[` + ev + `]} {}`,
		`{"events":[` + ev + `],"other":1}`,
		`[]`,
		``,
	} {
		want, wantErr := s.batchEventsOneByOne([]byte(body))
		got, err := s.batchEvents([]byte(body))
		if hookd.ErrorCode(err) != hookd.ErrorCode(wantErr) || hookd.ErrorMessage(err) != hookd.ErrorMessage(wantErr) {
			t.Errorf("%s: one pass: %v; one by one: %v", body, err, wantErr)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: one pass: %d events; one by one: %d", body, len(got), len(want))
			continue
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.OrganizationID != w.OrganizationID || g.Type != w.Type || string(g.Data) != string(w.Data) {
				t.Errorf("%s: event %d: one pass %+v; one by one %+v", body, i, g, w)
			}
		}
	}
}
