package hookd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"time"
)

// ValidateData checks data against the type's JSON Schema (--validate-events).
// It understands the part of JSON Schema the catalog uses: type, properties,
// required, enum, minimum and the formats date-time and uri. The error is
// EINVALID on field "data" and its message names the offending member,
// e.g. "data.findings.high must be an integer".
func (t *EventType) ValidateData(data json.RawMessage) error {
	var schema, value any
	if err := json.Unmarshal(t.Schema, &schema); err != nil {
		return fmt.Errorf("hookd: schema of %s: %w", t.Name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&value); err != nil {
		return FieldErrorf("data", "data must be a JSON object")
	}
	if msg := checkSchema("data", schema.(map[string]any), value); msg != "" {
		return FieldErrorf("data", "%s", msg)
	}
	return nil
}

// checkSchema returns "" when v matches s, else a message about path.
func checkSchema(path string, s map[string]any, v any) string {
	if want, ok := s["type"].(string); ok {
		if !hasJSONType(v, want) {
			return fmt.Sprintf("%s must be %s %s", path, article(want), want)
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}
		if !found {
			return fmt.Sprintf("%s must be one of %v", path, enum)
		}
	}
	if minimum, ok := s["minimum"].(float64); ok {
		if n, err := v.(json.Number).Float64(); err == nil && n < minimum {
			return fmt.Sprintf("%s must be at least %v", path, minimum)
		}
	}
	if str, ok := v.(string); ok {
		switch s["format"] {
		case "date-time":
			if _, err := time.Parse(time.RFC3339, str); err != nil {
				return fmt.Sprintf("%s must be an RFC 3339 date-time such as 2026-11-26T10:00:00Z", path)
			}
		case "uri":
			if u, err := url.Parse(str); err != nil || !u.IsAbs() {
				return fmt.Sprintf("%s must be an absolute URI", path)
			}
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, present := obj[r.(string)]; !present {
				return fmt.Sprintf("%s.%s is required", path, r)
			}
		}
	}
	props, _ := s["properties"].(map[string]any)
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names) // report the same member first every time
	for _, name := range names {
		if pv, present := obj[name]; present {
			if msg := checkSchema(path+"."+name, props[name].(map[string]any), pv); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func hasJSONType(v any, want string) bool {
	switch want {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, err := n.Int64()
		return err == nil
	case "null":
		return v == nil
	}
	return true
}

func article(typ string) string {
	if typ == "object" || typ == "array" || typ == "integer" {
		return "an"
	}
	return "a"
}
