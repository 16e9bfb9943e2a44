// Package dispatch is the delivery engine. It claims due deliveries from the
// store with a lease, POSTs each one, signed, to its webhook, and records
// the attempt and what happens next: delivered, retried later, or failed.
//
// The store's deliveries table is the queue. A lease keeps other
// dispatchers off a delivery while its attempt runs; if the process dies,
// the lease expires and the delivery is claimed again, which is why
// delivery is at least once and delivery ids are stable. Attempt results
// are written in groups (one transaction for every result that finished
// meanwhile), which is where most of the throughput comes from.
package dispatch

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookd-dev/hookd"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/signature"
)

// Store is what the dispatcher needs of a store; see storetest.Store for
// the full contract of each method.
type Store interface {
	ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit, perWebhook int) ([]*hookd.Job, error)
	CompleteAttempts(ctx context.Context, results []*hookd.AttemptResult) error
	ReleaseJobs(ctx context.Context, jobs []*hookd.Job) error
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// Sender makes one HTTP attempt; *egress.Client is the real one.
type Sender interface {
	Post(ctx context.Context, url string, header http.Header, body []byte) egress.Result
}

// Config configures a Dispatcher. Zero fields take the defaults below.
type Config struct {
	Store  Store
	Sender Sender
	Retry  RetryPolicy
	// Timeout bounds one attempt; the sender enforces it too. The lease of a
	// claimed delivery lasts Timeout + LeaseMargin.
	Timeout     time.Duration // default 10s
	LeaseMargin time.Duration // default 20s
	// Workers is how many attempts run at once in this process.
	Workers int // default 256
	// PerWebhook caps the attempts in flight to any one webhook, across
	// every dispatcher sharing the store, so that one slow endpoint can take
	// at most its share of the workers.
	PerWebhook int // default 16
	// Poll is the longest the dispatcher sleeps without looking at the
	// store, as a safety net for work it was not told about.
	Poll time.Duration // default 1s
	// ClaimInterval is the shortest time between two claims made only
	// because attempts finished, so that one claim takes many freed slots
	// at once instead of one claim per attempt.
	ClaimInterval time.Duration // default 2ms
	Logger        *slog.Logger
	Metrics       *Metrics // may be nil
	// Tracing, when not nil, makes a span of every attempt (see package
	// tracing). nil costs nothing.
	Tracing trace.TracerProvider
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.LeaseMargin <= 0 {
		c.LeaseMargin = 20 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 256
	}
	if c.PerWebhook <= 0 {
		c.PerWebhook = 16
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.ClaimInterval <= 0 {
		c.ClaimInterval = 2 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// claimBatch bounds one claim, so a large backlog is taken in slices that
// keep the write lock short.
const claimBatch = 200

// Dispatcher runs attempts. Start it once; Stop it once (further calls are
// no-ops).
type Dispatcher struct {
	cfg    Config
	wake   chan struct{}
	done   chan struct{} // one token per finished attempt result committed
	result chan *hookd.AttemptResult

	stopOnce  sync.Once
	stopClaim context.CancelFunc // stops the claim loop
	abort     context.CancelFunc // cancels attempts still running after the grace period
	attempts  context.Context
	loopDone  chan struct{}  // closed when the claim loop has returned
	wrote     chan struct{}  // closed when the completer has written everything
	inflight  sync.WaitGroup // running attempts; Add only from the claim loop
	aborted   sync.Map       // lease → true for jobs handed back on abort
	tracer    trace.Tracer   // nil when tracing is off
}

// New returns a Dispatcher; nothing runs before Start.
func New(cfg Config) *Dispatcher {
	cfg.setDefaults()
	d := &Dispatcher{
		cfg:    cfg,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}, cfg.Workers),
		result: make(chan *hookd.AttemptResult, cfg.Workers),
	}
	if cfg.Tracing != nil {
		d.tracer = cfg.Tracing.Tracer("github.com/hookd-dev/hookd/dispatch")
	}
	return d
}

// Notify tells the dispatcher that new deliveries are due, so it claims them
// now instead of at its next poll. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the claim loop and the result writer in the background.
func (d *Dispatcher) Start() {
	claimCtx, stopClaim := context.WithCancel(context.Background())
	attempts, abort := context.WithCancel(context.Background())
	d.stopClaim, d.abort, d.attempts = stopClaim, abort, attempts
	d.loopDone, d.wrote = make(chan struct{}), make(chan struct{})
	go func() { defer close(d.loopDone); d.claimLoop(claimCtx) }()
	go func() { defer close(d.wrote); d.completer() }()
}

// Stop stops claiming, waits for the attempts in flight until ctx ends,
// then cancels those still running and hands their deliveries back to the
// store (ReleaseJobs) so another process, or the next start, sends them.
// Every finished attempt is recorded before Stop returns.
func (d *Dispatcher) Stop(ctx context.Context) {
	d.stopOnce.Do(func() {
		d.stopClaim()
		<-d.loopDone // no attempt starts after this
		idle := make(chan struct{})
		go func() { d.inflight.Wait(); close(idle) }()
		select {
		case <-idle:
		case <-ctx.Done():
			d.abort()
			<-idle
		}
		close(d.result)
		<-d.wrote
		d.abort()
	})
}

func (d *Dispatcher) claimLoop(ctx context.Context) {
	free := d.cfg.Workers
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastClaim time.Time
	short := false // the last claim took less than it asked for
	for {
		// Take back the slots of attempts recorded since the last turn.
		for drained := false; !drained; {
			select {
			case <-d.done:
				free++
			default:
				drained = true
			}
		}
		if free > 0 {
			want := min(free, claimBatch)
			jobs, err := d.claim(ctx, want)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Error("claiming deliveries", "err", err)
			}
			for _, j := range jobs {
				free--
				d.inflight.Add(1)
				go d.attempt(j)
			}
			lastClaim, short = time.Now(), len(jobs) < want
		}
		wait := d.cfg.Poll
		if !short && free > 0 {
			wait = 0 // more may be due right now
		} else if free > 0 {
			// Sleep until the next delivery falls due. One already due that
			// the claim left behind belongs to a webhook at its cap: a
			// finishing attempt wakes the loop for it, so do not spin.
			if at, ok, err := d.cfg.Store.NextDue(ctx); err == nil && ok && at.After(time.Now()) {
				wait = min(wait, time.Until(at))
			}
		}
		timer.Reset(wait)
		freed := false
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			short = false
		case <-d.done:
			free++
			freed = true
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if freed && short {
			// Only a slot came free, and the last claim found no more work
			// than it took. Claiming again for every single slot would cost
			// one store transaction per attempt; let a few results gather
			// first. A notification of new work cuts the pause short.
			if pause := time.Until(lastClaim.Add(d.cfg.ClaimInterval)); pause > 0 {
				timer.Reset(pause)
				select {
				case <-ctx.Done():
					return
				case <-d.wake:
				case <-timer.C:
				}
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
			}
		}
	}
}

func (d *Dispatcher) claim(ctx context.Context, limit int) ([]*hookd.Job, error) {
	now := time.Now()
	return d.cfg.Store.ClaimDeliveries(ctx, now, now.Add(d.cfg.Timeout+d.cfg.LeaseMargin), limit, d.cfg.PerWebhook)
}

// attempt makes one HTTP attempt of a job and queues its result.
func (d *Dispatcher) attempt(j *hookd.Job) {
	defer d.inflight.Done()
	ctx, cancel := context.WithTimeout(d.attempts, d.cfg.Timeout)
	defer cancel()

	body := j.Event.Payload(j.WebhookID)
	header := hookd.DeliveryHeaders(j.Event.Type, j.DeliveryID, j.WebhookID, j.Attempt)
	if j.Secret != "" {
		header[hookd.HeaderSignature] = []string{signature.Sign(j.Secret, body)}
	}
	var span trace.Span
	if d.tracer != nil {
		ctx, span = d.startAttempt(ctx, j)
	}
	started := time.Now()
	res := d.cfg.Sender.Post(ctx, j.URL, header, body)
	if d.attempts.Err() != nil && res.Err != nil {
		// Shutting down past the grace period: this attempt was cut short by
		// us, not by the receiver. Hand the delivery back unrecorded.
		if span != nil {
			span.End()
		}
		d.aborted.Store(j.Lease, true)
		d.result <- &hookd.AttemptResult{Job: j}
		return
	}
	r := d.judge(j, started, res)
	if span != nil {
		endAttempt(span, r)
	}
	d.result <- r
}

// judge turns an HTTP outcome into the attempt log entry and the
// delivery's next status.
func (d *Dispatcher) judge(j *hookd.Job, started time.Time, res egress.Result) *hookd.AttemptResult {
	r := &hookd.AttemptResult{
		Job: j,
		Attempt: hookd.Attempt{
			DeliveryID:   j.DeliveryID,
			Number:       j.Attempt,
			StartedAt:    started,
			Duration:     res.Duration,
			StatusCode:   res.StatusCode,
			ResponseBody: string(res.Body),
		},
	}
	switch {
	case res.Err != nil:
		r.Attempt.Error = res.Err.Error()
	case res.StatusCode < 200 || res.StatusCode > 299:
		r.Attempt.Error = "receiver answered " + http.StatusText(res.StatusCode)
		if r.Attempt.Error == "receiver answered " {
			r.Attempt.Error = "receiver answered a non-2xx status"
		}
	}
	if r.Attempt.Error == "" {
		r.Status = hookd.DeliveryDelivered
		return r
	}
	next := j.Retry() + 1
	if next > d.cfg.Retry.Retries() {
		r.Status = hookd.DeliveryFailed
		return r
	}
	now := time.Now()
	r.Status = hookd.DeliveryPending
	r.NextAttemptAt = now.Add(d.cfg.Retry.Delay(next, parseRetryAfter(res.StatusCode, res.Header, now)))
	return r
}

// completer writes attempt results in groups: it takes one, then whatever
// else has finished meanwhile, and commits them in one transaction.
func (d *Dispatcher) completer() {
	const maxGroup = 500
	group := make([]*hookd.AttemptResult, 0, maxGroup)
	var release []*hookd.Job
	for first := range d.result {
		group, release = group[:0], release[:0]
		add := func(r *hookd.AttemptResult) {
			if _, ok := d.aborted.LoadAndDelete(r.Job.Lease); ok {
				release = append(release, r.Job)
			} else {
				group = append(group, r)
			}
		}
		add(first)
	more:
		for len(group)+len(release) < maxGroup {
			select {
			case r, ok := <-d.result:
				if !ok {
					break more
				}
				add(r)
			default:
				break more
			}
		}
		d.commit(group, release)
		for range len(group) + len(release) {
			select {
			case d.done <- struct{}{}:
			default: // the claim loop has stopped
			}
		}
	}
}

// commit records results, retrying a failing store for a while: a result
// that cannot be recorded is not lost, its lease expires and the delivery
// is attempted again, but retrying here avoids that duplicate.
func (d *Dispatcher) commit(group []*hookd.AttemptResult, release []*hookd.Job) {
	ctx := context.Background()
	for try := 0; ; try++ {
		err := d.cfg.Store.CompleteAttempts(ctx, group)
		if err == nil {
			break
		}
		if try == 5 {
			d.cfg.Logger.Error("recording attempts failed; their deliveries will be retried when the leases expire", "count", len(group), "err", err)
			break
		}
		d.cfg.Logger.Warn("recording attempts", "count", len(group), "err", err)
		time.Sleep(time.Duration(100<<try) * time.Millisecond)
	}
	for _, r := range group {
		d.observe(r)
	}
	if len(release) > 0 {
		if err := d.cfg.Store.ReleaseJobs(ctx, release); err != nil {
			d.cfg.Logger.Warn("handing back deliveries; they will be retried when the leases expire", "count", len(release), "err", err)
		}
	}
}

func (d *Dispatcher) observe(r *hookd.AttemptResult) {
	log := d.cfg.Logger.With("delivery_id", r.Job.DeliveryID, "webhook_id", r.Job.WebhookID, "attempt", r.Attempt.Number)
	switch r.Status {
	case hookd.DeliveryDelivered:
		log.Debug("delivered", "status", r.Attempt.StatusCode, "duration", r.Attempt.Duration)
	case hookd.DeliveryPending:
		log.Info("attempt failed, will retry", "status", r.Attempt.StatusCode, "err", r.Attempt.Error, "next_attempt_at", r.NextAttemptAt)
	case hookd.DeliveryFailed:
		log.Warn("delivery failed", "status", r.Attempt.StatusCode, "err", r.Attempt.Error)
	}
	d.cfg.Metrics.observe(r)
}
