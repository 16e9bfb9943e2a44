package dispatch

import (
	"time"

	"github.com/hookd-dev/hookd"
)

// Isolation (SPEC §6): a slow or hanging endpoint must not hold up the
// others. The store's per-webhook cap (Config.PerWebhook, across every
// node) bounds what one webhook takes, but not what many take together:
// with 1024 workers and a cap of 16, sixty-four hanging webhooks with a
// backlog hold every worker for whole timeouts. So this process also
// limits, on its own:
//
//   - each webhook to a window of attempts in flight, which starts at one
//     and grows by one with every attempt that finishes promptly, up to
//     PerWebhook, and halves with every slow one (AIMD). A webhook that
//     hangs never finishes an attempt, so it never holds more than its
//     first worker until it times out;
//   - the webhooks not known to answer promptly — those whose last attempt
//     here was slow, and those not heard from yet — to Workers − Reserved
//     workers together, so that however many endpoints hang at once the
//     reserve stays for the webhooks that answer.
//
// The store hands out due deliveries oldest first and counts every lease
// against the webhook's cap, so a claim brings jobs of webhooks that have
// no room here. Those are held, leased, in the webhook's queue, in due
// order, and start as room comes; handing them back would only have the
// next claim return them first again. Holding them keeps their webhook at
// its cap in the store, which stops further claims of it. A held job
// starts only while its lease has the delivery timeout and half the lease
// margin left, and is handed back when it no longer does, so an attempt
// never outlives its lease. At most MaxHeld jobs are held; when a claim
// might bring more, it asks the store only for webhooks with no delivery
// in flight anywhere (a cap of one), which passes over the held backlogs
// and still serves the webhooks that answer, one attempt at a time each.

// slowAttempt is whether an attempt that took d counts as slow: half the
// delivery timeout or more, a timeout included. Fast failures (a refused
// connection, a 500) are not slow: they give their worker back at once.
func slowAttempt(d, timeout time.Duration) bool { return d >= timeout/2 }

// forgetAfter is how long the limiter remembers a webhook with nothing in
// flight or held. A forgotten webhook starts again as one not heard from,
// which is how a slow one is treated anyway.
const forgetAfter = 5 * time.Minute

// hookLimit is what the limiter knows of one webhook.
type hookLimit struct {
	id      string
	window  int  // attempts it may have in flight here: 1..PerWebhook
	prompt  bool // its last attempt here finished promptly
	running int
	held    []*hookd.Job // claimed, waiting for room, in due order
	queued  bool         // in limiter.queue
	seen    time.Time    // last claimed or finished
}

// limiter decides which claimed jobs start now and holds the others. Only
// the claim loop uses it.
type limiter struct {
	workers    int // attempts in flight at most
	perWebhook int
	unproven   int // attempts in flight to webhooks not known prompt, at most
	maxHeld    int
	timeout    time.Duration
	startLease time.Duration // a held job starts only with this much lease left

	hooks       map[string]*hookLimit
	running     int // attempts in flight
	runUnproven int // of those, to webhooks not known prompt
	held        int // jobs held, all webhooks
	queue       []*hookLimit
	lastForget  time.Time
}

func newLimiter(cfg *Config) *limiter {
	return &limiter{
		workers:    cfg.Workers,
		perWebhook: cfg.PerWebhook,
		unproven:   cfg.Workers - cfg.Reserved,
		maxHeld:    cfg.MaxHeld,
		timeout:    cfg.Timeout,
		startLease: cfg.Timeout + cfg.LeaseMargin/2,
		hooks:      map[string]*hookLimit{},
	}
}

func (l *limiter) hook(id string) *hookLimit {
	h := l.hooks[id]
	if h == nil {
		h = &hookLimit{id: id, window: 1}
		l.hooks[id] = h
	}
	return h
}

// room is how many more attempts may start now.
func (l *limiter) room() int { return l.workers - l.running }

// canStart is whether one more attempt of h may start now.
func (l *limiter) canStart(h *hookLimit) bool {
	return l.running < l.workers && h.running < h.window && (h.prompt || l.runUnproven < l.unproven)
}

func (l *limiter) started(h *hookLimit) {
	h.running++
	l.running++
	if !h.prompt {
		l.runUnproven++
	}
}

// admit takes a job just claimed: it returns true when the job may start
// now (and counts it as running). Otherwise the job is held, or, when
// MaxHeld jobs are already held, refused: the caller hands it back.
func (l *limiter) admit(j *hookd.Job, now time.Time) (start, refused bool) {
	h := l.hook(j.WebhookID)
	h.seen = now
	if len(h.held) == 0 && l.canStart(h) {
		l.started(h)
		return true, false
	}
	if l.held >= l.maxHeld {
		return false, true
	}
	h.held = append(h.held, j)
	l.held++
	if !h.queued {
		h.queued = true
		l.queue = append(l.queue, h)
	}
	return false, false
}

// atCap is whether the webhook has as many deliveries leased here as the
// store's cap allows, so that it may have more due than the store gave.
func (l *limiter) atCap(id string) bool {
	h := l.hooks[id]
	return h != nil && h.running+len(h.held) >= l.perWebhook
}

// finish records that an attempt of webhook id has finished and been
// recorded, and adapts the webhook's window to how long it took.
func (l *limiter) finish(id string, slow bool, now time.Time) {
	h := l.hook(id)
	h.seen = now
	h.running--
	l.running--
	if !h.prompt {
		l.runUnproven--
	}
	if slow {
		h.window = max(h.window/2, 1)
	} else {
		h.window = min(h.window+1, l.perWebhook)
	}
	if prompt := !slow; prompt != h.prompt {
		if prompt {
			l.runUnproven -= h.running
		} else {
			l.runUnproven += h.running
		}
		h.prompt = prompt
	}
}

// pump starts the held jobs that have room now, webhooks in turn, and
// returns those to start and those whose lease is too short to start any
// more, to hand back. Jobs of one webhook keep their due order.
func (l *limiter) pump(now time.Time) (start, back []*hookd.Job) {
	if l.held == 0 {
		return nil, nil
	}
	n := len(l.queue)
	for _, h := range l.queue[:n] {
		for len(h.held) > 0 {
			j := h.held[0]
			if j.LeaseUntil.Sub(now) < l.startLease {
				back = append(back, j)
			} else if l.canStart(h) {
				l.started(h)
				start = append(start, j)
			} else {
				break
			}
			h.held[0] = nil
			h.held = h.held[1:]
			l.held--
		}
		if len(h.held) == 0 {
			h.held, h.queued = nil, false // let the backing array go
		} else {
			l.queue = append(l.queue, h) // its turn again after the others
		}
	}
	l.queue = append(l.queue[:0], l.queue[n:]...)
	return start, back
}

// drain removes and returns every held job, for handing back at stop.
func (l *limiter) drain() []*hookd.Job {
	var all []*hookd.Job
	for _, h := range l.queue {
		all = append(all, h.held...)
		h.held, h.queued = nil, false
	}
	l.queue, l.held = nil, 0
	return all
}

// forget drops the webhooks with nothing in flight or held that have not
// been seen for forgetAfter, so the limiter's memory follows the webhooks
// with recent work, not every webhook there ever was.
func (l *limiter) forget(now time.Time) {
	if now.Sub(l.lastForget) < forgetAfter {
		return
	}
	l.lastForget = now
	for id, h := range l.hooks {
		if h.running == 0 && len(h.held) == 0 && now.Sub(h.seen) >= forgetAfter {
			delete(l.hooks, id)
		}
	}
}
