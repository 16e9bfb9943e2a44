package hookd

import "encoding/json"

// Event types of the platform's catalog (SPEC §2).
const (
	EventScanStarted     = "scan_started"
	EventScanCompleted   = "scan_completed"
	EventScanStopped     = "scan_stopped"
	EventScanFailed      = "scan_failed"
	EventReportGenerated = "report_generated"
	EventPing            = "ping" // sent only by the ping endpoint, never published
)

// EventType is one entry of the catalog: its name, what it means, the JSON
// Schema of its data and an example data object.
type EventType struct {
	Name        string
	Description string
	Schema      json.RawMessage
	Example     json.RawMessage
}

// Catalog returns every event type, ping last, in a stable order.
func Catalog() []*EventType { return catalog }

// LookupEventType returns the catalog entry named name, or nil.
func LookupEventType(name string) *EventType {
	for _, t := range catalog {
		if t.Name == name {
			return t
		}
	}
	return nil
}

var catalog = []*EventType{
	{
		Name:        EventScanStarted,
		Description: "A scan of one of the organization's targets has started.",
		Schema: schema(`{
			"scan_id": {"type": "string", "description": "The scan's id."},
			"target": {"type": "string", "description": "What is scanned: a host name, URL or address range."},
			"scan_type": {"type": "string", "description": "The kind of scan, e.g. \"web\", \"network\", \"api\"."},
			"started_at": {"type": "string", "format": "date-time"}
		}`, "scan_id", "target", "started_at"),
		Example: json.RawMessage(`{"scan_id":"scn_01","target":"https://shop.example.com","scan_type":"web","started_at":"2026-11-26T10:00:00Z"}`),
	},
	{
		Name:        EventScanCompleted,
		Description: "A scan finished; the summary counts its findings by severity.",
		Schema: schema(`{
			"scan_id": {"type": "string"},
			"target": {"type": "string"},
			"scan_type": {"type": "string"},
			"started_at": {"type": "string", "format": "date-time"},
			"completed_at": {"type": "string", "format": "date-time"},
			"findings": {
				"type": "object",
				"description": "Number of findings by severity.",
				"properties": {
					"critical": {"type": "integer", "minimum": 0},
					"high": {"type": "integer", "minimum": 0},
					"medium": {"type": "integer", "minimum": 0},
					"low": {"type": "integer", "minimum": 0},
					"info": {"type": "integer", "minimum": 0}
				}
			}
		}`, "scan_id", "target", "completed_at"),
		Example: json.RawMessage(`{"scan_id":"scn_01","target":"https://shop.example.com","scan_type":"web","started_at":"2026-11-26T10:00:00Z","completed_at":"2026-11-26T10:42:00Z","findings":{"critical":0,"high":2,"medium":5,"low":11,"info":30}}`),
	},
	{
		Name:        EventScanStopped,
		Description: "A scan was stopped before it finished, by a user or a schedule.",
		Schema: schema(`{
			"scan_id": {"type": "string"},
			"target": {"type": "string"},
			"stopped_at": {"type": "string", "format": "date-time"},
			"stopped_by": {"type": "string", "description": "Who stopped it: a user's email or \"schedule\"."},
			"reason": {"type": "string"}
		}`, "scan_id", "target", "stopped_at"),
		Example: json.RawMessage(`{"scan_id":"scn_01","target":"https://shop.example.com","stopped_at":"2026-11-26T10:05:00Z","stopped_by":"alice@example.com","reason":"maintenance window"}`),
	},
	{
		Name:        EventScanFailed,
		Description: "A scan could not run to the end because of an error.",
		Schema: schema(`{
			"scan_id": {"type": "string"},
			"target": {"type": "string"},
			"failed_at": {"type": "string", "format": "date-time"},
			"error": {"type": "string", "description": "What went wrong, for people."}
		}`, "scan_id", "target", "failed_at", "error"),
		Example: json.RawMessage(`{"scan_id":"scn_01","target":"https://shop.example.com","failed_at":"2026-11-26T10:03:00Z","error":"target unreachable: connection timed out"}`),
	},
	{
		Name:        EventReportGenerated,
		Description: "A report of a scan is ready to download.",
		Schema: schema(`{
			"report_id": {"type": "string"},
			"scan_id": {"type": "string"},
			"format": {"type": "string", "enum": ["pdf", "html", "json", "csv"]},
			"url": {"type": "string", "format": "uri"},
			"generated_at": {"type": "string", "format": "date-time"}
		}`, "report_id", "scan_id", "format", "url"),
		Example: json.RawMessage(`{"report_id":"rep_01","scan_id":"scn_01","format":"pdf","url":"https://portal.example.com/reports/rep_01","generated_at":"2026-11-26T10:45:00Z"}`),
	},
	{
		Name:        EventPing,
		Description: "A test event sent by the ping endpoint to one webhook, to check that it is reachable.",
		Schema: schema(`{
			"message": {"type": "string"},
			"webhook_id": {"type": "string"}
		}`, "message"),
		Example: json.RawMessage(`{"message":"ping from hookd","webhook_id":"wh_01"}`),
	},
}

// schema wraps a properties object into a JSON Schema (2020-12) of an object.
// The catalog is fixed at build time, so a malformed literal panics at start.
func schema(properties string, required ...string) json.RawMessage {
	var props json.RawMessage
	if err := json.Unmarshal([]byte(properties), &props); err != nil {
		panic("hookd: bad catalog schema: " + err.Error())
	}
	b, err := json.Marshal(map[string]any{
		"$schema":    "https://json-schema.org/draft/2020-12/schema",
		"type":       "object",
		"properties": props,
		"required":   required,
	})
	if err != nil {
		panic(err)
	}
	return b
}
