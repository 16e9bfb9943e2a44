// Package tracing turns OpenTelemetry traces on when the environment asks
// for them, in the variables every OpenTelemetry SDK reads
// (OTEL_EXPORTER_OTLP_ENDPOINT and its friends), and otherwise stays out of
// the way: with no endpoint configured, Start returns a nil provider and
// the instrumented code does nothing but a nil check.
//
// Spans go to an OTLP collector over HTTP (protobuf). The trace of an
// event runs from the publisher's request (publish) through the store
// transaction that fans it out (fanout) to every delivery attempt
// (attempt), which may happen minutes later in another process: the
// event's W3C traceparent is stored with it to make that link.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Provider is a running trace pipeline: the tracer provider to hand to the
// instrumented packages and the exporter to flush at exit.
type Provider struct {
	trace.TracerProvider
	sdk      *sdktrace.TracerProvider
	Endpoint string // where spans go, for the start-up log line
}

// Shutdown flushes the spans still buffered and stops exporting.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// Start builds the trace pipeline the environment describes. It returns
// nil, nil when tracing is off: no
// OTLP endpoint set, OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
// The exporter reads the rest of the standard variables itself
// (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, the _TRACES_
// variants), the SDK reads OTEL_TRACES_SAMPLER and the resource reads
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
func Start(ctx context.Context, version string) (*Provider, error) {
	getenv := os.Getenv
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" || strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	switch exp := getenv("OTEL_TRACES_EXPORTER"); exp {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported; use otlp or none", exp)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(name); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s: %q is not supported; hookd exports OTLP over http/protobuf", name, p)
			}
			break // the signal-specific variable wins over the general one
		}
	}
	if !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %q must be an http:// or https:// URL", endpoint)
	}

	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %v", err)
	}
	// The environment's attributes come last so that OTEL_SERVICE_NAME can
	// rename the service.
	res, err := resource.New(ctx,
		resource.WithAttributes(
			attribute.String("service.name", "hookd"),
			attribute.String("service.version", version),
		),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %v", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
	)
	return &Provider{TracerProvider: sdk, sdk: sdk, Endpoint: endpoint}, nil
}

// ErrorHandler logs the exporter's failures (a collector that is down, say)
// as warnings instead of the SDK's default of printing them to stderr.
type ErrorHandler struct{ Logger *slog.Logger }

func (h ErrorHandler) Handle(err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		h.Logger.Warn("tracing: exporting spans failed", "err", err)
	}
}

// propagator is W3C Trace Context: what publishers send in their requests'
// traceparent header, and what is stored with each event.
var propagator = propagation.TraceContext{}

// Extract returns ctx carrying the remote span context of an incoming
// request's traceparent header, if it has a valid one.
func Extract(ctx context.Context, header propagation.TextMapCarrier) context.Context {
	return propagator.Extract(ctx, header)
}

// TraceParent returns the W3C traceparent of ctx's span, "" when it has
// none.
func TraceParent(ctx context.Context) string {
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c["traceparent"]
}

// WithTraceParent returns ctx carrying the remote span context a stored
// traceparent names; ctx unchanged when tp is "" or malformed.
func WithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": tp})
}
