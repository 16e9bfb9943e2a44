package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd-dev/hookd/seal"
)

// Tests in this file run several real hookd processes on one PostgreSQL
// database (SPEC §6 scale-out). They need HOOKD_TEST_POSTGRES_URL.

// pgSchemaURL creates a fresh schema, dropped after the test, and returns a
// database URL whose connections use it.
func pgSchemaURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("HOOKD_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("HOOKD_TEST_POSTGRES_URL not set: skipping PostgreSQL process tests")
	}
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("HOOKD_TEST_POSTGRES_URL: %v", err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "hookd_e2e_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

func pgNodeEnv(t *testing.T, dbURL, secretKey string) []string {
	return []string{
		"HOOKD_LISTEN=" + freeAddr(t),
		"HOOKD_DATABASE=" + dbURL,
		"HOOKD_ADMIN_TOKEN=admin-token-0123456789",
		"HOOKD_SECRET_KEY=" + secretKey,
		"HOOKD_ALLOW_HTTP=true",
		"HOOKD_ALLOW_PRIVATE_TARGETS=true",
		"HOOKD_RETRY_SCHEDULE=100ms,200ms,400ms",
		"HOOKD_DELIVERY_TIMEOUT=2s",
		"HOOKD_LEASE_MARGIN=1s",
		"HOOKD_LOG_LEVEL=warn",
	}
}

// overlapReceiver counts deliveries per event id and notices when two
// requests of one delivery are in flight at the same time, which would mean
// two nodes ran the same attempt at once.
type overlapReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	counts   map[string]int
	inflight map[string]bool
	overlaps int
}

func newOverlapReceiver(t *testing.T, delay time.Duration) *overlapReceiver {
	rc := &overlapReceiver{counts: map[string]int{}, inflight: map[string]bool{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dlv := r.Header.Get("X-CG-Hook-Delivery")
		var body struct{ ID string }
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		rc.mu.Lock()
		if rc.inflight[dlv] {
			rc.overlaps++
		}
		rc.inflight[dlv] = true
		rc.mu.Unlock()
		time.Sleep(delay)
		rc.mu.Lock()
		delete(rc.inflight, dlv)
		rc.counts[body.ID]++
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

// waitAllDelivered waits until every acked event id arrived at least once
// and returns the number of duplicate deliveries.
func (rc *overlapReceiver) waitAllDelivered(t *testing.T, acked []string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rc.mu.Lock()
		missing, dups := 0, 0
		for _, id := range acked {
			switch c := rc.counts[id]; {
			case c == 0:
				missing++
			case c > 1:
				dups += c - 1
			}
		}
		rc.mu.Unlock()
		if missing == 0 {
			return dups
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never arrived", missing, len(acked))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Three nodes share one database; one is killed with SIGKILL under load.
// Every event acknowledged by any node reaches the receiver, and no
// delivery is ever attempted by two nodes at once.
func TestPostgres_ThreeNodesOneKilled(t *testing.T) {
	dbURL := pgSchemaURL(t)
	key := seal.GenerateKey()
	admin := "admin-token-0123456789"
	rc := newOverlapReceiver(t, 2*time.Millisecond)

	nodes := make([]*proc, 3)
	for i := range nodes {
		nodes[i] = startProc(t, pgNodeEnv(t, dbURL, key))
	}
	orgID, _ := setupTenant(t, nodes[0].base, admin, rc.URL+"/hook", "s3cret")

	stop := make(chan struct{})
	results := make(chan []string, len(nodes))
	for _, n := range nodes {
		go func() { results <- publishBatches(n.base, admin, orgID, 20, stop) }()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-nodes[0].done
	time.Sleep(1000 * time.Millisecond) // the survivors go on taking events
	close(stop)
	var acked []string
	for range nodes {
		acked = append(acked, <-results...)
	}
	if len(acked) < 1000 {
		t.Fatalf("only %d events acknowledged: the load was too light to mean anything", len(acked))
	}
	dups := rc.waitAllDelivered(t, acked, 60*time.Second)
	rc.mu.Lock()
	overlaps := rc.overlaps
	rc.mu.Unlock()
	if overlaps != 0 {
		t.Fatalf("%d deliveries were in flight from two nodes at once", overlaps)
	}
	t.Logf("3 nodes, one killed: all %d acknowledged events delivered; %d duplicate deliveries; no overlapping attempts", len(acked), dups)
}

// publishTolerant publishes batches until stop, counting only 202s and
// carrying on through errors (the database may be restarting).
func publishTolerant(base, admin, orgID string, stop <-chan struct{}) []string {
	var acked []string
	client := &http.Client{Timeout: 10 * time.Second}
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return acked
		default:
		}
		events := make([]map[string]any, 10)
		for i := range events {
			events[i] = map[string]any{"organization_id": orgID, "type": "scan_completed", "data": map[string]any{"seq": seq, "i": i}}
		}
		b, _ := json.Marshal(map[string]any{"events": events})
		req, _ := http.NewRequest("POST", base+"/v1/events/batch", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := client.Do(req)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		var out struct{ Data []struct{ ID string } }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode == 202 {
			for _, e := range out.Data {
				acked = append(acked, e.ID)
			}
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// PostgreSQL restarts while hookd runs: hookd reconnects and delivers every
// event it acknowledged, before and after. The restart disturbs every other
// user of the cluster, so the test runs only when asked for
// (HOOKD_TEST_POSTGRES_RESTART=1; .ci/run does, on its own).
func TestPostgres_DatabaseRestart(t *testing.T) {
	if os.Getenv("HOOKD_TEST_POSTGRES_RESTART") != "1" {
		t.Skip("set HOOKD_TEST_POSTGRES_RESTART=1 to restart the PostgreSQL cluster during this test")
	}
	dbURL := pgSchemaURL(t)
	versions, _ := filepath.Glob("/etc/postgresql/*")
	if len(versions) == 0 {
		t.Skip("no local PostgreSQL cluster to restart (/etc/postgresql is empty)")
	}
	admin := "admin-token-0123456789"
	rc := newOverlapReceiver(t, time.Millisecond)
	node := startProc(t, pgNodeEnv(t, dbURL, seal.GenerateKey()))
	orgID, _ := setupTenant(t, node.base, admin, rc.URL+"/hook", "")

	stop := make(chan struct{})
	result := make(chan []string)
	go func() { result <- publishTolerant(node.base, admin, orgID, stop) }()
	time.Sleep(500 * time.Millisecond)
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(versions[0]), "main", "restart").CombinedOutput()
	if err != nil {
		t.Fatalf("restarting PostgreSQL: %v\n%s", err, out)
	}
	time.Sleep(2 * time.Second) // publishing goes on after the restart
	close(stop)
	acked := <-result
	dups := rc.waitAllDelivered(t, acked, 60*time.Second)
	t.Logf("database restarted mid-load: all %d acknowledged events delivered; %d duplicates", len(acked), dups)
	// The node is still healthy.
	resp, err := http.Get(node.base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz after the restart: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Split roles: an api node takes events, a worker node delivers them,
// woken by PostgreSQL's NOTIFY. The worker serves no API.
func TestPostgres_SplitRoles(t *testing.T) {
	dbURL := pgSchemaURL(t)
	key := seal.GenerateKey()
	admin := "admin-token-0123456789"
	rc := newOverlapReceiver(t, 0)

	api := startProc(t, append(pgNodeEnv(t, dbURL, key), "HOOKD_ROLE=api"))
	worker := startProc(t, append(pgNodeEnv(t, dbURL, key), "HOOKD_ROLE=worker"))
	orgID, _ := setupTenant(t, api.base, admin, rc.URL+"/hook", "")

	var ev struct{ ID string }
	b, _ := json.Marshal(map[string]any{"organization_id": orgID, "type": "scan_completed", "data": map[string]any{}})
	req, _ := http.NewRequest("POST", api.base+"/v1/events", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&ev)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("publish through the api node: %d", resp.StatusCode)
	}
	rc.waitAllDelivered(t, []string{ev.ID}, 10*time.Second)

	// The worker answers probes and metrics, but no API.
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/webhooks": 404} {
		resp, err := http.Get(worker.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("worker %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	// The api node has no dispatcher: its metrics show no attempts.
	if m := scrape(t, api.base); strings.Contains(m, `hookd_attempts_total{result="success"} 1`) {
		t.Errorf("the api node made an attempt:\n%s", m)
	}
}
