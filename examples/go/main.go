// This program is a hookd webhook receiver written with net/http and
// hookd's signature package only. It verifies X-CG-Hook-Signature, accepts
// each delivery id once, answers 200 at once and handles the event
// afterwards.
//
//	HOOKD_WEBHOOK_SECRET=s3cret PORT=9000 go run ./examples/go
//
// It prints "accepted <delivery> <type>" for a new delivery, "duplicate
// <delivery>" for one it has seen, and "handled <event> <type> for <org>"
// once the work is done; refused requests go to standard error.
package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hookd-dev/hookd/signature"
)

// maxBody bounds what one request may send; hookd's deliveries stay far
// below it (event data is at most 256 KiB).
const maxBody = 1 << 20

func main() {
	secret := os.Getenv("HOOKD_WEBHOOK_SECRET")
	if secret == "" {
		log.Fatal("set HOOKD_WEBHOOK_SECRET to the webhook's secret")
	}
	addr := net.JoinHostPort(cmp.Or(os.Getenv("HOST"), "127.0.0.1"), cmp.Or(os.Getenv("PORT"), "9000"))

	rc := &receiver{secret: secret, seen: map[string]bool{}, work: make(chan []byte, 1000)}
	go rc.worker()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

type receiver struct {
	secret string
	work   chan []byte // bodies waiting for the worker

	mu sync.Mutex
	// seen holds the delivery ids already accepted. In memory, so it is
	// forgotten at restart: a real receiver records the id in its database,
	// in the same transaction as the work, under a unique constraint.
	seen map[string]bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	// The signature covers the raw bytes: verify them before decoding JSON.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	delivery := r.Header.Get("X-CG-Hook-Delivery")
	if err := signature.Verify(rc.secret, body, r.Header.Get(signature.Header)); err != nil {
		log.Printf("rejected %s: %v", delivery, err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	if !rc.markSeen(delivery) {
		// Still 200: the delivery did arrive, and any other answer makes
		// hookd try again.
		fmt.Printf("duplicate %s\n", delivery)
		return
	}
	select {
	case rc.work <- body:
	default:
		// The worker is far behind. Rather than hold hookd's request past
		// its timeout, ask for a retry later.
		rc.forget(delivery)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "busy, retry later", http.StatusServiceUnavailable)
		return
	}
	fmt.Printf("accepted %s %s\n", delivery, r.Header.Get("X-CG-Hook-Event"))
}

// markSeen records a delivery id and reports whether it was new.
func (rc *receiver) markSeen(id string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen[id] {
		return false
	}
	rc.seen[id] = true
	return true
}

func (rc *receiver) forget(id string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.seen, id)
}

// worker does the work of each accepted delivery, after hookd has had its
// answer.
func (rc *receiver) worker() {
	for body := range rc.work {
		var event struct {
			ID             string          `json:"id"`
			Type           string          `json:"type"`
			OrganizationID string          `json:"organization_id"`
			Data           json.RawMessage `json:"data"` // shape per type: GET /v1/event-types/{type}
		}
		if err := json.Unmarshal(body, &event); err != nil {
			log.Printf("cannot decode event: %v", err)
			continue
		}
		// The real work goes here: open a ticket, notify a channel, …
		fmt.Printf("handled %s %s for %s\n", event.ID, event.Type, event.OrganizationID)
	}
}
