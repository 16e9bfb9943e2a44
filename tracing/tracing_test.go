package tracing_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/tracing"
	"github.com/hookd-dev/hookd/tracing/tracingtest"
)

// setenv sets the variables for the test, after clearing every variable
// Start reads, so that the machine's own settings do not leak in.
func setenv(t *testing.T, kv map[string]string) {
	for _, k := range []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED",
		"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
	} {
		t.Setenv(k, "")
	}
	for k, v := range kv {
		t.Setenv(k, v)
	}
}

// With no endpoint, or tracing turned off the standard ways, there is no
// provider at all: the instrumented packages skip tracing on a nil check.
func TestStart_Off(t *testing.T) {
	for name, kv := range map[string]map[string]string{
		"no endpoint":         {},
		"only a service name": {"OTEL_SERVICE_NAME": "hookd-eu"},
		"sdk disabled":        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"},
		"exporter none":       {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			setenv(t, kv)
			p, err := tracing.Start(context.Background(), "test")
			if err != nil || p != nil {
				t.Fatalf("Start = %v, %v; want nil, nil", p, err)
			}
		})
	}
}

// A setting hookd cannot honour stops start-up with one line naming it.
func TestStart_BadSettings(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			setenv(t, tc.env)
			p, err := tracing.Start(context.Background(), "test")
			if err == nil {
				p.Shutdown(context.Background())
				t.Fatalf("Start accepted %v", tc.env)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.want+":") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line starting with %s:", msg, tc.want)
			}
		})
	}
}

// Spans reach a collector over OTLP/HTTP with hookd's resource, and a
// traceparent taken from one span continues its trace elsewhere, which is
// how an attempt joins the publish that caused it.
func TestStart_ExportsOverOTLP(t *testing.T) {
	c := tracingtest.NewCollector(t)
	setenv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "10",
	})
	p, err := tracing.Start(context.Background(), "v1.2.3")
	if err != nil || p == nil {
		t.Fatalf("Start = %v, %v", p, err)
	}
	tracer := p.Tracer("test")
	ctx, parent := tracer.Start(context.Background(), "publish")
	tp := tracing.TraceParent(ctx)
	parent.End()
	if !strings.HasPrefix(tp, "00-"+parent.SpanContext().TraceID().String()+"-") {
		t.Fatalf("TraceParent = %q, want the span's trace", tp)
	}
	_, child := tracer.Start(tracing.WithTraceParent(context.Background(), tp), "attempt")
	child.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	spans := c.WaitFor(t, 5*time.Second, func(s []tracingtest.Span) bool { return len(s) == 2 })
	byName := map[string]tracingtest.Span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	pub, att := byName["publish"], byName["attempt"]
	if att.TraceID != pub.TraceID || att.ParentSpanID != pub.SpanID {
		t.Fatalf("attempt %+v is not a child of publish %+v", att, pub)
	}
	if pub.Service != "hookd" {
		t.Fatalf("service.name = %q, want hookd", pub.Service)
	}
}

func TestWithTraceParent_Malformed(t *testing.T) {
	for _, tp := range []string{"", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"} {
		ctx := tracing.WithTraceParent(context.Background(), tp)
		if got := tracing.TraceParent(ctx); got != "" {
			t.Errorf("WithTraceParent(%q) carries %q, want nothing", tp, got)
		}
	}
}
