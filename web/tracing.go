package web

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/tracing"
)

// traced wraps an API route in a server span named after the route
// ("POST /v1/events"), child of the caller's traceparent header when it
// sends one: a publisher's trace goes on into hookd. Only called when
// tracing is on.
func (s *Server) traced(name string, h http.Handler) http.Handler {
	method, route, _ := strings.Cut(name, " ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, name,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", method),
				attribute.String("http.route", route),
				attribute.String("hookd.request_id", requestID(ctx)),
			))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
		if sw, ok := w.(*statusWriter); ok {
			code := sw.code()
			span.SetAttributes(attribute.Int("http.response.status_code", code))
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
		}
	})
}

// startFanout starts the span of the store transaction that stores events
// and creates their deliveries, and stamps each event with it: the stored
// traceparent makes every attempt of its deliveries a child of this span,
// in whatever process and however late it runs.
func (s *Server) startFanout(ctx context.Context, events []*hookd.Event) (context.Context, trace.Span) {
	ctx, span := s.tracer.Start(ctx, "hookd.fanout", trace.WithAttributes(attribute.Int("hookd.events", len(events))))
	if len(events) == 1 {
		span.SetAttributes(
			attribute.String("hookd.event.type", events[0].Type),
			attribute.String("hookd.organization_id", events[0].OrganizationID))
	}
	if tp := tracing.TraceParent(ctx); tp != "" {
		for _, e := range events {
			e.TraceParent = tp
		}
	}
	return ctx, span
}

// endFanout records what publishing created and ends the span.
func endFanout(span trace.Span, results []hookd.PublishResult, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, hookd.ErrorMessage(err))
	}
	created, deliveries := 0, 0
	for _, r := range results {
		if r.Created {
			created++
			deliveries += r.Event.Deliveries
		}
	}
	span.SetAttributes(attribute.Int("hookd.events.created", created), attribute.Int("hookd.deliveries", deliveries))
	span.End()
}
