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
	Workers int // default 1024
	// PerWebhook caps the attempts in flight to any one webhook, across
	// every dispatcher sharing the store, so that one slow endpoint can take
	// at most its share of the workers. Within it, each webhook's attempts
	// in this process start at one at a time and grow with prompt answers
	// (see limit.go).
	PerWebhook int // default 16
	// Reserved is how many workers are kept for webhooks whose last attempt
	// answered promptly: the others — webhooks whose last attempt was slow
	// (took half the timeout or more) and webhooks not heard from yet —
	// share at most Workers − Reserved workers, however many of them hang.
	// At most Workers − 1; negative means none.
	Reserved int // default Workers/4
	// MaxHeld bounds the claimed deliveries this process holds, leased,
	// while their webhook has no room (see limit.go); it bounds the memory
	// they take, at most MaxHeld events.
	MaxHeld int // default 4 × Workers
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
		c.Workers = 1024
	}
	if c.PerWebhook <= 0 {
		c.PerWebhook = 16
	}
	switch {
	case c.Reserved == 0:
		c.Reserved = c.Workers / 4
	case c.Reserved < 0:
		c.Reserved = 0
	}
	c.Reserved = min(c.Reserved, c.Workers-1) // or nothing could start a new webhook
	if c.MaxHeld <= 0 {
		c.MaxHeld = 4 * c.Workers
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
	done   chan finished // one per attempt result committed
	result chan *hookd.AttemptResult
	limits *limiter // the claim loop's alone

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
		done:   make(chan finished, cfg.Workers),
		result: make(chan *hookd.AttemptResult, cfg.Workers),
		limits: newLimiter(&cfg),
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

// finished is what the completer tells the claim loop of an attempt whose
// result is recorded: its worker is free, and whether it was slow.
type finished struct {
	webhookID string
	slow      bool
	retryAt   time.Time // when the delivery is due again, if it is
}

func (d *Dispatcher) claimLoop(ctx context.Context) {
	l := d.limits
	defer func() { d.handBack(l.drain()) }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var (
		lastClaim time.Time
		short     bool      // the last claim took less than it asked for
		pending   = true    // a claim may find work
		notBefore time.Time // and should not run before then
		forFreed  bool      // pending only because workers came free
		lastFreed bool      // the last claim was made for that alone
		nextDue   time.Time // when the next delivery falls due; zero: none known
		polled    bool      // the pending claim is the poll's
	)
	// finish takes back the worker of a recorded attempt. A claim may then
	// find more only if the last one was not short, or the webhook was at
	// its cap; otherwise the freed worker changes nothing the store would
	// answer, and a claim would be one more write for nothing.
	finish := func(f finished) {
		more := !short || l.atCap(f.webhookID)
		l.finish(f.webhookID, f.slow, time.Now())
		if !f.retryAt.IsZero() && (nextDue.IsZero() || f.retryAt.Before(nextDue)) {
			nextDue = f.retryAt
		}
		if more && !pending {
			pending, notBefore, forFreed = true, time.Time{}, true
			if short && lastFreed {
				// Claiming again for every single freed worker would cost
				// one store transaction per attempt; let a few results
				// gather first. A notification of new work cuts this short.
				// The first freed worker after a claim for new work claims
				// at once: that claim may have found its webhook at the cap
				// only because this attempt's result was not yet recorded.
				notBefore = lastClaim.Add(d.cfg.ClaimInterval)
			}
		}
	}
	for {
		for drained := false; !drained; {
			select {
			case f := <-d.done:
				finish(f)
			default:
				drained = true
			}
		}
		now := time.Now()
		start, back := l.pump(now)
		d.handBack(back)
		for _, j := range start {
			d.start(j)
		}
		l.forget(now)

		if room := l.room(); pending && room > 0 && !now.Before(notBefore) {
			want, perWebhook := min(room, claimBatch), d.cfg.PerWebhook
			if l.held+want > l.maxHeld {
				// The hold may overflow: take only webhooks with nothing
				// in flight, which passes over every held backlog.
				perWebhook = 1
			}
			jobs, err := d.claim(ctx, want, perWebhook)
			if err != nil && ctx.Err() == nil {
				d.cfg.Logger.Error("claiming deliveries", "err", err)
			}
			var refused []*hookd.Job
			for _, j := range jobs {
				switch run, refuse := l.admit(j, now); {
				case run:
					d.start(j)
				case refuse:
					refused = append(refused, j)
				}
			}
			d.handBack(refused)
			// A claim whose jobs had to be handed back would return them
			// again: wait for a worker to come free instead.
			lastClaim, short = time.Now(), len(jobs) < want || len(refused) > 0
			lastFreed, pending, forFreed = forFreed, !short, false
			// Asked at most once per claim: until the next one, only this
			// process's retries (finished.retryAt) make work due sooner,
			// or else a notification or the poll. Not asked either while
			// work is known to be due already (left behind at a cap): the
			// answer would be the same, and this read on the loop's path
			// delayed the claim for the next notification by up to 15 ms
			// beside 50 hanging webhooks. The poll's claims ask again,
			// so a time that has become stale is corrected within a poll.
			if short && (polled || nextDue.IsZero() || !nextDue.Before(lastClaim)) {
				nextDue = time.Time{}
				if at, ok, err := d.cfg.Store.NextDue(ctx); err == nil && ok {
					nextDue = at
				}
			}
			polled = false
		}

		wait := d.cfg.Poll
		if room := l.room(); room > 0 && pending {
			wait = max(time.Until(notBefore), 0)
		} else if room > 0 {
			// Sleep until the next delivery falls due. One already due that
			// the claim left behind belongs to a webhook at its cap: a
			// finishing attempt wakes the loop for it, so do not spin.
			if nextDue.After(time.Now()) {
				wait = min(wait, time.Until(nextDue))
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			pending, notBefore, forFreed = true, time.Time{}, false
		case f := <-d.done:
			finish(f)
		case <-timer.C:
			if !pending {
				forFreed, polled = false, true
			}
			pending = true
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// start runs a job's attempt. Only the claim loop calls it.
func (d *Dispatcher) start(j *hookd.Job) {
	d.inflight.Add(1)
	go d.attempt(j)
}

// handBack releases jobs that will not be attempted here, so that they are
// claimed again at once rather than when their leases expire.
func (d *Dispatcher) handBack(jobs []*hookd.Job) {
	if len(jobs) == 0 {
		return
	}
	if err := d.cfg.Store.ReleaseJobs(context.Background(), jobs); err != nil {
		d.cfg.Logger.Warn("handing back deliveries; they will be retried when the leases expire", "count", len(jobs), "err", err)
	}
}

func (d *Dispatcher) claim(ctx context.Context, limit, perWebhook int) ([]*hookd.Job, error) {
	now := time.Now()
	return d.cfg.Store.ClaimDeliveries(ctx, now, now.Add(d.cfg.Timeout+d.cfg.LeaseMargin), limit, perWebhook)
}

// attempt makes one HTTP attempt of a job and queues its result.
func (d *Dispatcher) attempt(j *hookd.Job) {
	defer d.inflight.Done()
	body := j.Event.Payload(j.WebhookID)
	header := hookd.DeliveryHeaders(j.Event.Type, j.DeliveryID, j.WebhookID, j.Attempt)
	if j.Secret != "" {
		header[hookd.HeaderSignature] = []string{signature.Sign(j.Secret, body)}
	}
	// The timeout runs from here, not before the body was built, so that a
	// timed-out attempt had the whole of it (and the log says so).
	ctx, cancel := context.WithTimeout(d.attempts, d.cfg.Timeout)
	defer cancel()
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
		for _, r := range group {
			f := finished{webhookID: r.Job.WebhookID, slow: slowAttempt(r.Attempt.Duration, d.cfg.Timeout)}
			if r.Status == hookd.DeliveryPending {
				f.retryAt = r.NextAttemptAt
			}
			d.finished(f)
		}
		for _, j := range release {
			d.finished(finished{webhookID: j.WebhookID})
		}
	}
}

// finished gives an attempt's worker back to the claim loop. The channel
// has room for every worker, so it never blocks while the loop runs.
func (d *Dispatcher) finished(f finished) {
	select {
	case d.done <- f:
	default: // the claim loop has stopped
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
