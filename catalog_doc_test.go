package hookd_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/signature"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/events.md from hookd.Catalog()")

// The generated part of docs/events.md lies between these markers; the
// prose around them is written by hand.
const (
	eventsDoc     = "docs/events.md"
	catalogBegin  = "<!-- catalog:begin -->"
	catalogEnd    = "<!-- catalog:end -->"
	updateCommand = "go test . -run TestEventsDoc -update"
)

// The envelope of the example deliveries. The ids have the shape of real
// ones; the secret is the one the README's quick start uses.
const (
	docEventID   = "evt_01kb3m0x9v8w2q5c7n4r6t8y0z"
	docOrgID     = "org_01kb3k7r5p3n1m9k7h5g3f1e0d"
	docWebhookID = "wh_01kb3kz2a4b6c8d0e2f4g6h8j0"
	docSecret    = "s3cret"
)

// memberMeaning explains data members whose schema has no description (and
// no member of the same path elsewhere in the catalog has one). A member
// with neither fails the test, so a new member cannot go undocumented; an
// entry no member needs fails it too, so this list shrinks as descriptions
// move into catalog.go's schemas, where GET /v1/event-types/{name} shows
// them as well.
var memberMeaning = map[string]string{
	"started_at":        "When the scan started.",
	"completed_at":      "When the scan finished.",
	"stopped_at":        "When the scan was stopped.",
	"failed_at":         "When the scan failed.",
	"reason":            "Why it was stopped, for people, when a reason was given.",
	"findings.critical": "Findings of critical severity.",
	"findings.high":     "Findings of high severity.",
	"findings.medium":   "Findings of medium severity.",
	"findings.low":      "Findings of low severity.",
	"findings.info":     "Informational findings.",
	"report_id":         "The report's id.",
	"format":            "The report's file format.",
	"url":               "Where to download the report.",
	"generated_at":      "When the report was generated.",
	"message":           "A text for people; hookd sends `ping from hookd`.",
	"webhook_id":        "The pinged webhook's id: the same as the body's `webhook_id`.",
}

// schemaNode is the part of JSON Schema the catalog uses (see ValidateData).
type schemaNode struct {
	Type        string          `json:"type"`
	Description string          `json:"description"`
	Format      string          `json:"format"`
	Enum        []any           `json:"enum"`
	Minimum     *float64        `json:"minimum"`
	Properties  json.RawMessage `json:"properties"`
	Required    []string        `json:"required"`
}

// member is one row of a type's data table: a property, nested ones with a
// dotted path.
type member struct {
	path     string
	parent   string // "" for a top-level member
	node     schemaNode
	required bool
}

// docs/events.md's catalog sections are exactly what renderCatalog makes
// of hookd.Catalog(): they cannot drift from what the API serves.
func TestEventsDoc(t *testing.T) {
	raw, err := os.ReadFile(eventsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	begin := strings.Index(doc, catalogBegin)
	end := strings.Index(doc, catalogEnd)
	if begin < 0 || end < begin || strings.Count(doc, catalogBegin) != 1 || strings.Count(doc, catalogEnd) != 1 {
		t.Fatalf("%s must hold %s once, then %s once, around the generated catalog sections", eventsDoc, catalogBegin, catalogEnd)
	}
	got := doc[begin+len(catalogBegin) : end]
	want := renderCatalog(t)
	if t.Failed() {
		return
	}
	if got == want {
		return
	}
	if *update {
		updated := doc[:begin+len(catalogBegin)] + want + doc[end:]
		if err := os.WriteFile(eventsDoc, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the catalog sections of %s", eventsDoc)
		return
	}
	line, gotLine, wantLine := firstDifference(got, want)
	lineNo := strings.Count(doc[:begin], "\n") + line
	t.Errorf("%s: the catalog sections between %s and %s do not match hookd.Catalog(); they are generated, not edited by hand.\n"+
		"Run `%s` to rewrite them.\nFirst difference, at line %d:\n  file: %q\n  want: %q",
		eventsDoc, catalogBegin, catalogEnd, updateCommand, lineNo, gotLine, wantLine)
}

// firstDifference returns the first line (counted from 1 in got's own
// numbering, the marker's line being 1) where got and want differ, and both
// versions of it ("" past the end).
func firstDifference(got, want string) (int, string, string) {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; ; i++ {
		if i >= len(g) && i >= len(w) {
			return i + 1, "", ""
		}
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return i + 1, gl, wl
		}
	}
}

// renderCatalog writes the generated part of docs/events.md: an overview
// table and one section per catalog type, each with its data members, its
// JSON Schema and a delivery body as hookd sends it. Missing meanings are
// reported with t.Errorf.
func renderCatalog(t *testing.T) string {
	t.Helper()
	types := hookd.Catalog()
	members := map[string][]member{}
	described := map[string]string{} // path → first description in the catalog
	for _, et := range types {
		var root schemaNode
		if err := json.Unmarshal(et.Schema, &root); err != nil {
			t.Fatalf("%s: schema: %v", et.Name, err)
		}
		ms := flatten(t, et.Name, "", root)
		members[et.Name] = ms
		for _, m := range ms {
			if _, ok := described[m.path]; !ok && m.node.Description != "" {
				described[m.path] = m.node.Description
			}
		}
	}
	usedFallback := map[string]bool{}
	meaning := func(typ string, m member) string {
		switch {
		case m.node.Description != "":
			return m.node.Description
		case described[m.path] != "":
			return described[m.path]
		case memberMeaning[m.path] != "":
			usedFallback[m.path] = true
			return memberMeaning[m.path]
		}
		t.Errorf("%s: data member %s has no description: add one to its schema in catalog.go (or to memberMeaning in catalog_doc_test.go)", typ, m.path)
		return ""
	}

	var b strings.Builder
	b.WriteString("\n<!-- Generated from hookd.Catalog() by catalog_doc_test.go: do not edit by hand.\n")
	fmt.Fprintf(&b, "     Change catalog.go, then run `%s`. -->\n\n", updateCommand)
	b.WriteString("| type | sent when |\n|---|---|\n")
	for _, et := range types {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", et.Name, et.Name, cell(et.Description))
	}
	for _, et := range types {
		fmt.Fprintf(&b, "\n### `%s`\n\n%s\n", et.Name, et.Description)
		if et.Name == hookd.EventPing {
			b.WriteString("\nSent only by `POST /v1/webhooks/{id}/ping`, to that one webhook, whatever it\n" +
				"subscribes to and even when it is inactive. It cannot be published\n" +
				"(`POST /v1/events` answers 400 on field `type`) nor subscribed to.\n")
		}
		b.WriteString("\n| member | type | required | meaning |\n|---|---|---|---|\n")
		for _, m := range members[et.Name] {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.path, typeText(m.node), requiredText(m), cell(meaning(et.Name, m)))
		}

		var schema bytes.Buffer
		if err := json.Indent(&schema, et.Schema, "", "  "); err != nil {
			t.Fatalf("%s: schema: %v", et.Name, err)
		}
		fmt.Fprintf(&b, "\nJSON Schema of `data` (the `schema` of `GET /v1/event-types/%s`):\n\n```json\n%s\n```\n", et.Name, schema.String())

		body := exampleBody(t, et)
		fmt.Fprintf(&b, "\nA delivery's body; the bytes are exactly this line, without a newline:\n\n```json\n%s\n```\n", body)
		fmt.Fprintf(&b, "\nWith the secret `%s` it is signed\n`%s: %s`.\n", docSecret, signature.Header, signature.Sign(docSecret, body))
	}
	for path := range memberMeaning {
		if !usedFallback[path] {
			t.Errorf("memberMeaning[%q] in catalog_doc_test.go is not needed (no such member, or its schema has a description now): remove it", path)
		}
	}
	return b.String()
}

// flatten lists the properties of an object schema in their order in the
// schema, each object's members right after it.
func flatten(t *testing.T, typ, prefix string, n schemaNode) []member {
	t.Helper()
	if len(n.Properties) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(n.Properties))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: properties of %q is not an object", typ, prefix)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%s: properties of %q: %v", typ, prefix, err)
		}
		name := tok.(string)
		var child schemaNode
		if err := dec.Decode(&child); err != nil {
			t.Fatalf("%s: property %s%s: %v", typ, prefix, name, err)
		}
		m := member{path: prefix + name, parent: strings.TrimSuffix(prefix, "."), node: child, required: slices.Contains(n.Required, name)}
		out = append(out, m)
		if child.Type == "object" {
			out = append(out, flatten(t, typ, m.path+".", child)...)
		}
	}
	return out
}

func typeText(n schemaNode) string {
	s := n.Type
	switch n.Format {
	case "date-time":
		s += ", RFC 3339 date-time"
	case "uri":
		s += ", absolute URI"
	case "":
	default:
		s += ", format " + n.Format
	}
	if len(n.Enum) > 0 {
		vals := make([]string, len(n.Enum))
		for i, v := range n.Enum {
			vals[i] = fmt.Sprintf("`%v`", v)
		}
		if len(vals) == 1 {
			s += ": " + vals[0]
		} else {
			s += ": " + strings.Join(vals[:len(vals)-1], ", ") + " or " + vals[len(vals)-1]
		}
	}
	if n.Minimum != nil {
		s += fmt.Sprintf(" ≥ %v", *n.Minimum)
	}
	return s
}

func requiredText(m member) string {
	switch {
	case !m.required:
		return "no"
	case m.parent == "":
		return "yes"
	}
	return fmt.Sprintf("yes, in `%s`", m.parent)
}

// cell makes text fit in a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// exampleBody is the body hookd sends for the type's example data, made by
// the same code as real deliveries (Event.Payload). The event is created a
// moment after the latest time in its data; a webhook_id in the data (ping)
// is the delivery's webhook.
func exampleBody(t *testing.T, et *hookd.EventType) []byte {
	t.Helper()
	var data map[string]any
	if err := json.Unmarshal(et.Example, &data); err != nil {
		t.Fatalf("%s: example: %v", et.Name, err)
	}
	created := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	latest := time.Time{}
	for _, v := range data {
		if s, ok := v.(string); ok {
			if tm, err := time.Parse(time.RFC3339, s); err == nil && tm.After(latest) {
				latest = tm
			}
		}
	}
	if !latest.IsZero() {
		created = latest
	}
	created = created.Add(123 * time.Millisecond)

	example := et.Example
	if id, ok := data["webhook_id"].(string); ok {
		old, _ := json.Marshal(map[string]string{"webhook_id": id})
		now, _ := json.Marshal(map[string]string{"webhook_id": docWebhookID})
		old, now = bytes.Trim(old, "{}"), bytes.Trim(now, "{}")
		if bytes.Count(example, old) != 1 {
			t.Fatalf("%s: example: cannot replace its webhook_id", et.Name)
		}
		example = bytes.Replace(example, old, now, 1)
	}
	ev := &hookd.Event{ID: docEventID, Type: et.Name, OrganizationID: docOrgID, CreatedAt: created, Data: example}
	if et.Name != hookd.EventPing { // ping is never published; its data is checked below
		if err := ev.Validate(); err != nil {
			t.Fatalf("%s: example event: %v", et.Name, err)
		}
	}
	if err := et.ValidateData(ev.Data); err != nil {
		t.Fatalf("%s: example data: %v", et.Name, err)
	}
	body := ev.Payload(docWebhookID)
	if !json.Valid(body) {
		t.Fatalf("%s: example body is not JSON: %s", et.Name, body)
	}
	return body
}
