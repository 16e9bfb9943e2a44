package hookd_test

import (
	"encoding/json"
	"testing"

	"github.com/hookd-dev/hookd"
)

// Every catalog example satisfies its own schema.
func TestCatalog_ExamplesMatchSchemas(t *testing.T) {
	for _, et := range hookd.Catalog() {
		if err := et.ValidateData(et.Example); err != nil {
			t.Errorf("%s: example does not match schema: %v", et.Name, err)
		}
	}
}

func TestEventType_ValidateData(t *testing.T) {
	completed := hookd.LookupEventType(hookd.EventScanCompleted)
	report := hookd.LookupEventType(hookd.EventReportGenerated)
	for _, tc := range []struct {
		name    string
		et      *hookd.EventType
		data    string
		wantMsg string // "" = valid
	}{
		{"OK", completed, `{"scan_id":"s","target":"t","completed_at":"2026-11-26T10:00:00Z"}`, ""},
		{"OKExtraMembers", completed, `{"scan_id":"s","target":"t","completed_at":"2026-11-26T10:00:00Z","extra":1}`, ""},
		{"ErrMissingRequired", completed, `{"scan_id":"s","target":"t"}`, "data.completed_at is required"},
		{"ErrWrongType", completed, `{"scan_id":1,"target":"t","completed_at":"2026-11-26T10:00:00Z"}`, "data.scan_id must be a string"},
		{"ErrNestedInteger", completed, `{"scan_id":"s","target":"t","completed_at":"2026-11-26T10:00:00Z","findings":{"high":1.5}}`, "data.findings.high must be an integer"},
		{"ErrMinimum", completed, `{"scan_id":"s","target":"t","completed_at":"2026-11-26T10:00:00Z","findings":{"high":-1}}`, "data.findings.high must be at least 0"},
		{"ErrDateTime", completed, `{"scan_id":"s","target":"t","completed_at":"yesterday"}`, "data.completed_at must be an RFC 3339 date-time such as 2026-11-26T10:00:00Z"},
		{"ErrEnum", report, `{"report_id":"r","scan_id":"s","format":"docx","url":"https://x.example/r"}`, "data.format must be one of [pdf html json csv]"},
		{"ErrURI", report, `{"report_id":"r","scan_id":"s","format":"pdf","url":"not a uri"}`, "data.url must be an absolute URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.et.ValidateData(json.RawMessage(tc.data))
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if hookd.ErrorCode(err) != hookd.EINVALID || hookd.ErrorField(err) != "data" {
				t.Fatalf("err = %v, want invalid_argument on field data", err)
			}
			if got := hookd.ErrorMessage(err); got != tc.wantMsg {
				t.Errorf("message = %q, want %q", got, tc.wantMsg)
			}
		})
	}
}
