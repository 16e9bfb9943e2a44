package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/seal"
)

// Tests in this file run the real hookd binary as a separate process, so
// that SIGKILL and SIGTERM mean what they mean in production.

var built struct {
	once sync.Once
	path string
	err  error
}

// hookdBinary builds ./cmd/hookd once per test run.
func hookdBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "hookd-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "hookd")
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(gobin, "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// proc is a hookd serve process.
type proc struct {
	cmd  *exec.Cmd
	base string
	log  *bytes.Buffer
	done chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProc starts `hookd serve` with env and waits until it is ready.
func startProc(t *testing.T, env []string) *proc {
	t.Helper()
	cmd := exec.Command(hookdBinary(t), "serve")
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, log: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	for _, kv := range env {
		if len(kv) > len("HOOKD_LISTEN=") && kv[:len("HOOKD_LISTEN=")] == "HOOKD_LISTEN=" {
			p.base = "http://" + kv[len("HOOKD_LISTEN="):]
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("hookd exited before it was ready: %v\n%s", err, p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hookd not ready after 15s\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serveEnv(t *testing.T, dir string) []string {
	return []string{
		"HOOKD_LISTEN=" + freeAddr(t),
		"HOOKD_DATABASE=sqlite:" + filepath.Join(dir, "hookd.db"),
		"HOOKD_ADMIN_TOKEN=admin-token-0123456789",
		"HOOKD_SECRET_KEY=" + seal.GenerateKey(),
		"HOOKD_ALLOW_HTTP=true",
		"HOOKD_ALLOW_PRIVATE_TARGETS=true",
		"HOOKD_RETRY_SCHEDULE=100ms,200ms,400ms",
		"HOOKD_DELIVERY_TIMEOUT=2s",
		"HOOKD_LOG_LEVEL=warn",
	}
}

// publishBatches publishes batches of n events until stop is closed or a
// request fails (the server was killed), and returns the ids acknowledged
// with 202.
func publishBatches(base, admin, orgID string, n int, stop <-chan struct{}) []string {
	var acked []string
	client := &http.Client{Timeout: 10 * time.Second}
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return acked
		default:
		}
		events := make([]map[string]any, n)
		for i := range events {
			events[i] = map[string]any{"organization_id": orgID, "type": "scan_completed", "data": map[string]any{"seq": seq, "i": i}}
		}
		b, _ := json.Marshal(map[string]any{"events": events})
		req, _ := http.NewRequest("POST", base+"/v1/events/batch", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := client.Do(req)
		if err != nil {
			return acked
		}
		var out struct{ Data []struct{ ID string } }
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			return acked
		}
		for _, e := range out.Data {
			acked = append(acked, e.ID)
		}
	}
}

// SPEC §6: an event answered 202 is delivered at least once even if the
// process is killed with SIGKILL at any moment. The receiver is slow, so a
// backlog of pending and in-flight deliveries exists when the kill comes.
func TestServe_SIGKILLLosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	dir := t.TempDir()
	env := serveEnv(t, dir)
	admin := "admin-token-0123456789"
	rc := newOverlapReceiver(t, 3*time.Millisecond)

	p := startProc(t, env)
	orgID, _ := setupTenant(t, p.base, admin, rc.URL+"/hook", "s3cret")

	stop := make(chan struct{})
	ackedCh := make(chan []string)
	go func() { ackedCh <- publishBatches(p.base, admin, orgID, 20, stop) }()
	time.Sleep(700 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	close(stop)
	acked := <-ackedCh
	if len(acked) == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}
	rc.mu.Lock()
	before := len(rc.counts)
	rc.mu.Unlock()
	t.Logf("killed with %d events acknowledged, %d delivered so far", len(acked), before)

	startProc(t, env) // same store, same port
	dups := rc.waitAllDelivered(t, acked, 30*time.Second)
	t.Logf("all %d acknowledged events delivered after restart; %d duplicate deliveries", len(acked), dups)
}

// SIGTERM stops the process cleanly with exit status 0.
func TestServe_SIGTERMExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	p := startProc(t, serveEnv(t, t.TempDir()))
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.log)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("still running 25s after SIGTERM")
	}
}
