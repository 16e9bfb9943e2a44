package dispatch

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/tracing"
)

// startAttempt starts the span of one attempt, a child of the span that
// fanned its event out (the traceparent stored with the event), so that a
// publish and every attempt it caused, here or on another node, minutes
// later or after a redelivery, form one trace. Only called when tracing is
// on.
func (d *Dispatcher) startAttempt(ctx context.Context, j *hookd.Job) (context.Context, trace.Span) {
	ctx = tracing.WithTraceParent(ctx, j.Event.TraceParent)
	return d.tracer.Start(ctx, "hookd.attempt",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("hookd.delivery_id", j.DeliveryID),
			attribute.String("hookd.webhook_id", j.WebhookID),
			attribute.String("hookd.event_id", j.Event.ID),
			attribute.String("hookd.event.type", j.Event.Type),
			attribute.Int("hookd.attempt", j.Attempt),
			attribute.String("http.request.method", "POST"),
		))
}

// endAttempt records the attempt's outcome on its span and ends it. The
// target URL is left out: it may carry credentials in its path or query.
func endAttempt(span trace.Span, r *hookd.AttemptResult) {
	if r.Attempt.StatusCode != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", r.Attempt.StatusCode))
	}
	span.SetAttributes(attribute.String("hookd.delivery.status", string(r.Status)))
	if r.Attempt.Error != "" {
		span.SetStatus(codes.Error, r.Attempt.Error)
	}
	span.End()
}
