package main

// The hookd a bench run measures: its serve processes on a fresh store,
// the tenant it publishes for, and the publishers.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/seal"
)

// benchHookd is the hookd under test: its serve processes on one fresh
// store, and the admin token they were started with.
type benchHookd struct {
	nodes     []*benchNode
	database  string
	admin     string
	serveArgs []string
	cleanup   []func()
}

// startBenchHookd starts o.Nodes `hookd serve` processes on a fresh store.
// env adds to (and, for the same variable, overrides) the bench's own
// serve settings; --serve-args win over both.
func startBenchHookd(ctx context.Context, o benchOptions, env []string) (*benchHookd, error) {
	h := &benchHookd{database: o.Database, admin: "bench-admin-" + randomToken(12)}
	dir, err := os.MkdirTemp("", "hookd-bench-")
	if err != nil {
		return nil, err
	}
	h.cleanup = append(h.cleanup, func() { os.RemoveAll(dir) })
	if h.database == "" {
		h.database = "sqlite:" + filepath.Join(dir, "hookd.db")
	}
	if o.Nodes > 1 && !strings.HasPrefix(h.database, "postgres") {
		h.stop()
		return nil, fmt.Errorf("--nodes %d needs --database postgres://…: the embedded store belongs to one process", o.Nodes)
	}
	if strings.HasPrefix(h.database, "postgres") {
		var drop func()
		if h.database, drop, err = freshSchema(ctx, h.database); err != nil {
			h.stop()
			return nil, fmt.Errorf("--database: %v", err)
		}
		h.cleanup = append(h.cleanup, drop)
	}
	secretKey := seal.GenerateKey()
	h.serveArgs = append([]string{"serve"}, strings.Fields(o.ServeArgs)...)
	for range o.Nodes {
		n, err := startBenchNode(ctx, h.serveArgs, h.database, h.admin, secretKey, env)
		if n != nil {
			h.nodes = append(h.nodes, n)
		}
		if err != nil {
			h.stop()
			return nil, err
		}
	}
	return h, nil
}

// stop stops the nodes, then removes the store.
func (h *benchHookd) stop() {
	for _, n := range h.nodes {
		n.stop()
	}
	h.nodes = nil
	for i := len(h.cleanup) - 1; i >= 0; i-- {
		h.cleanup[i]()
	}
	h.cleanup = nil
}

func (h *benchHookd) base() string  { return h.nodes[0].base }
func (h *benchHookd) store() string { return strings.SplitN(h.database, ":", 2)[0] }
func (h *benchHookd) command() string {
	return "hookd " + strings.Join(h.serveArgs, " ")
}

// peakRSSMB is the largest peak resident set of the nodes so far.
func (h *benchHookd) peakRSSMB() float64 {
	var peak float64
	for _, n := range h.nodes {
		peak = max(peak, peakRSSMB(n.cmd.Process.Pid))
	}
	return peak
}

// tenant creates the organization the bench publishes for and returns its
// id and a client with one of its API keys.
func (h *benchHookd) tenant(ctx context.Context) (string, *client.Client, error) {
	adminC := client.New(h.base(), h.admin)
	org, err := adminC.CreateOrganization(ctx, client.OrganizationInput{Name: "bench"})
	if err != nil {
		return "", nil, err
	}
	key, err := adminC.CreateAPIKey(ctx, org.ID, "bench")
	if err != nil {
		return "", nil, err
	}
	return org.ID, client.New(h.base(), key.Key), nil
}

// createBenchWebhooks creates n webhooks subscribed to scan_completed,
// pointing at url, through the API, a few at a time (set-up, not
// measured), and returns their ids in creation order.
func createBenchWebhooks(ctx context.Context, orgC *client.Client, n int, url string) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(n, 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				w, err := orgC.CreateWebhook(ctx, client.WebhookInput{
					Name: client.Ptr(fmt.Sprintf("bench-%d", i)), URL: client.Ptr(url),
					Events: []string{"scan_completed"}, Secret: client.Ptr("bench-secret"),
				})
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("creating webhook %d: %v", i+1, err) })
					next.Store(int64(n)) // stop the others
					return
				}
				ids[i] = w.ID
			}
		}()
	}
	wg.Wait()
	return ids, firstErr
}

// benchPublished is what publishing a run's events recorded.
type benchPublished struct {
	sent       []time.Time // when the request carrying event bench-i left
	start      time.Time
	dur        time.Duration
	deliveries int // deliveries created, from the 202s
}

// publish publishes events bench-0 … bench-(n-1) of orgID, each with ~1 KiB
// of data like the ceiling's bodies, in batches of o.Batch by o.Publishers
// concurrent publishers spread over the nodes, at most o.Rate events/s
// when set. acked, when not nil, is called after each acknowledged batch
// with the number of events acknowledged so far.
func (h *benchHookd) publish(ctx context.Context, o benchOptions, orgID string, n int, acked func(done int)) (*benchPublished, error) {
	pad := strings.Repeat("x", 800)
	p := &benchPublished{sent: make([]time.Time, n)}
	var next, done, deliveries, lastAck atomic.Int64
	var pubErr atomic.Value
	var limiter <-chan time.Time
	if o.Rate > 0 {
		per := time.Second * time.Duration(o.Batch) / time.Duration(o.Rate)
		t := time.NewTicker(max(per, time.Microsecond))
		defer t.Stop()
		limiter = t.C
	}
	p.start = time.Now()
	var wg sync.WaitGroup
	for i := range o.Publishers {
		pub := client.New(h.nodes[i%len(h.nodes)].base, h.admin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if limiter != nil {
					<-limiter
				}
				first := int(next.Add(int64(o.Batch))) - o.Batch
				if first >= n || ctx.Err() != nil || pubErr.Load() != nil {
					return
				}
				last := min(first+o.Batch, n)
				batch := make([]client.EventInput, 0, last-first)
				for i := first; i < last; i++ {
					batch = append(batch, client.EventInput{ID: "bench-" + strconv.Itoa(i), OrganizationID: orgID, Type: "scan_completed",
						Data: map[string]any{"scan_id": "scn_" + strconv.Itoa(i), "target": "bench.example", "completed_at": "2026-11-26T10:00:00Z", "pad": pad}})
				}
				now := time.Now()
				for i := first; i < last; i++ {
					p.sent[i] = now
				}
				if o.Batch == 1 {
					ev, _, err := pub.Publish(ctx, batch[0])
					if err != nil {
						pubErr.Store(err)
						return
					}
					deliveries.Add(int64(ev.Deliveries))
				} else {
					evs, err := pub.PublishBatch(ctx, batch)
					if err != nil {
						pubErr.Store(err)
						return
					}
					for _, ev := range evs {
						deliveries.Add(int64(ev.Deliveries))
					}
				}
				lastAck.Store(int64(time.Since(p.start)))
				d := done.Add(int64(last - first))
				if acked != nil {
					acked(int(d))
				}
			}
		}()
	}
	wg.Wait()
	// Until the last acknowledgement: with --rate, publishers wait for one
	// more tick before they find nothing left to publish.
	p.dur = time.Duration(lastAck.Load())
	p.deliveries = int(deliveries.Load())
	if err, ok := pubErr.Load().(error); ok {
		return nil, fmt.Errorf("publishing: %v", err)
	}
	return p, ctx.Err()
}

// benchNode is one `hookd serve` process of a bench run.
type benchNode struct {
	cmd  *exec.Cmd
	base string
	log  bytes.Buffer
}

func startBenchNode(ctx context.Context, serveArgs []string, database, admin, secretKey string, env []string) (*benchNode, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	n := &benchNode{cmd: exec.CommandContext(ctx, self, serveArgs...), base: "http://" + addr}
	n.cmd.Env = append(os.Environ(),
		"HOOKD_LISTEN="+addr, "HOOKD_DATABASE="+database, "HOOKD_ADMIN_TOKEN="+admin,
		"HOOKD_SECRET_KEY="+secretKey, "HOOKD_ALLOW_HTTP=true", "HOOKD_ALLOW_PRIVATE_TARGETS=true",
		"HOOKD_RETRY_SCHEDULE=500ms,1s,2s", "HOOKD_LOG_LEVEL=error",
		// The bench measures hookd's throughput, not its request limits:
		// single-event publishing (--batch 1) passes the admin token's
		// 1000/s, and setting up or listing passes an API key's 100/s.
		"HOOKD_RATE_LIMIT=-1", "HOOKD_ADMIN_RATE_LIMIT=-1")
	n.cmd.Env = append(n.cmd.Env, env...) // later entries win
	n.cmd.Stdout, n.cmd.Stderr = &n.log, &n.log
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, n.base, 30*time.Second); err != nil {
		return n, fmt.Errorf("hookd serve did not start: %v\n%s", err, n.log.String())
	}
	return n, nil
}

// stop ends the node with SIGINT, as an operator would, and kills it if it
// does not stop within 10 s.
func (n *benchNode) stop() {
	n.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
	}
}

// freshSchema creates a schema of its own for a bench run on PostgreSQL and
// returns the URL that uses it and a function that drops it.
func freshSchema(ctx context.Context, url string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	schema := "hookd_bench_" + strings.ToLower(randomHex(6))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	drop := func() {
		c, err := pgx.Connect(context.Background(), url)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema, drop, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
