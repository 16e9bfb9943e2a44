package main

import (
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookd-dev/hookd/seal"
)

// The crash harness (issue 5): publish continuously while hookd is killed
// with SIGKILL at random moments, again and again, and check that every
// event acknowledged with 202 reached the receiver at least once.

const crashKills = 20

// ackLog collects acknowledged ids from publishers that outlive the
// processes they talk to.
type ackLog struct {
	mu  sync.Mutex
	ids []string
}

func (a *ackLog) add(ids []string) {
	a.mu.Lock()
	a.ids = append(a.ids, ids...)
	a.mu.Unlock()
}

// publishAcrossKills publishes to base until stop, through every kill and
// restart, recording what was acknowledged.
func publishAcrossKills(base, admin, orgID string, acks *ackLog, stop <-chan struct{}, done *sync.WaitGroup) {
	defer done.Done()
	for {
		select {
		case <-stop:
			return
		default:
		}
		// publishTolerant returns at stop only; run it in short slices so
		// acknowledged ids are recorded as we go.
		slice := make(chan struct{})
		timer := time.AfterFunc(100*time.Millisecond, func() { close(slice) })
		acks.add(publishTolerant(base, admin, orgID, mergeStop(stop, slice)))
		timer.Stop()
	}
}

func mergeStop(a, b <-chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		select {
		case <-a:
		case <-b:
		}
		close(out)
	}()
	return out
}

func TestCrash_SQLiteRandomKills(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	env := serveEnv(t, t.TempDir())
	admin := "admin-token-0123456789"
	rc := newOverlapReceiver(t, time.Millisecond)
	p := startProc(t, env)
	orgID, _ := setupTenant(t, p.base, admin, rc.URL+"/hook", "s3cret")

	var acks ackLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go publishAcrossKills(p.base, admin, orgID, &acks, stop, &wg)
	go publishAcrossKills(p.base, admin, orgID, &acks, stop, &wg)
	for i := range crashKills {
		time.Sleep(time.Duration(50+rand.IntN(350)) * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		<-p.done
		p = startProc(t, env)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acks.ids) < 500 {
		t.Fatalf("only %d events acknowledged across %d kills: too little load to mean anything", len(acks.ids), crashKills)
	}
	dups := rc.waitAllDelivered(t, acks.ids, 60*time.Second)
	t.Logf("%d SIGKILLs: all %d acknowledged events delivered, %d duplicate deliveries", crashKills, len(acks.ids), dups)
}

// Two nodes on PostgreSQL; one of them, chosen at random, is killed and
// restarted again and again while both take events.
func TestCrash_PostgresTwoNodesRandomKills(t *testing.T) {
	dbURL := pgSchemaURL(t)
	key := seal.GenerateKey()
	admin := "admin-token-0123456789"
	rc := newOverlapReceiver(t, time.Millisecond)
	envs := [][]string{pgNodeEnv(t, dbURL, key), pgNodeEnv(t, dbURL, key)}
	nodes := []*proc{startProc(t, envs[0]), startProc(t, envs[1])}
	orgID, _ := setupTenant(t, nodes[0].base, admin, rc.URL+"/hook", "")

	var acks ackLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go publishAcrossKills(nodes[0].base, admin, orgID, &acks, stop, &wg)
	go publishAcrossKills(nodes[1].base, admin, orgID, &acks, stop, &wg)
	for i := range crashKills {
		time.Sleep(time.Duration(50+rand.IntN(350)) * time.Millisecond)
		n := rand.IntN(2)
		if err := nodes[n].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
		<-nodes[n].done
		nodes[n] = startProc(t, envs[n])
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acks.ids) < 500 {
		t.Fatalf("only %d events acknowledged across %d kills", len(acks.ids), crashKills)
	}
	// A killed node's leases expire after timeout + margin (3 s here).
	dups := rc.waitAllDelivered(t, acks.ids, 90*time.Second)
	rc.mu.Lock()
	overlaps := rc.overlaps
	rc.mu.Unlock()
	if overlaps != 0 {
		t.Fatalf("%d deliveries were in flight from two nodes at once", overlaps)
	}
	t.Logf("%d SIGKILLs over two nodes: all %d acknowledged events delivered, %d duplicate deliveries, no overlapping attempts", crashKills, len(acks.ids), dups)
}
