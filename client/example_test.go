package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
	"github.com/hookd-dev/hookd/web"
)

// The platform publishes events with the admin token; an organization
// manages its webhooks with its API key. No dispatcher runs in these
// examples, so deliveries stay pending.
func Example() {
	ctx := context.Background()
	baseURL, adminToken, stop := startHookd()
	defer stop()

	// The platform creates an organization and an API key for it.
	admin := client.New(baseURL, adminToken)
	org, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: "Acme"})
	if err != nil {
		log.Fatal(err)
	}
	key, err := admin.CreateAPIKey(ctx, org.ID, "integration")
	if err != nil {
		log.Fatal(err)
	}

	// The organization subscribes an endpoint to completed scans.
	acme := client.New(baseURL, key.Key)
	wh, err := acme.CreateWebhook(ctx, client.WebhookInput{
		Name:   client.Ptr("SIEM"),
		URL:    client.Ptr("https://siem.example.com/hooks/hookd"),
		Events: []string{"scan_completed"},
		Secret: client.Ptr("s3cret"),
	})
	if err != nil {
		log.Fatal(err)
	}

	// The platform publishes a scan_completed event of the organization.
	ev, _, err := admin.Publish(ctx, client.EventInput{
		OrganizationID: org.ID,
		Type:           "scan_completed",
		Data:           map[string]any{"scan_id": "scn_42", "target": "https://shop.example.com", "completed_at": "2026-11-26T10:42:00Z"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deliveries created:", ev.Deliveries)

	// The organization sees the delivery and the request hookd sends.
	page, err := acme.ListDeliveries(ctx, wh.ID, "", client.ListOptions{})
	if err != nil {
		log.Fatal(err)
	}
	d, err := acme.GetDelivery(ctx, wh.ID, page.Data[0].ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Status, d.Request.Headers["X-CG-Hook-Event"], d.Request.Headers["X-CG-Hook-Delivery"] == d.ID)
	// Output:
	// deliveries created: 1
	// pending scan_completed true
}

// Giving an event the platform's own id makes publishing idempotent: a
// retry after a timeout or a crash creates nothing new and returns the
// first event, with created false (the API answers 200 instead of 202).
func ExampleClient_Publish() {
	ctx := context.Background()
	baseURL, adminToken, stop := startHookd()
	defer stop()
	admin := client.New(baseURL, adminToken)
	orgID, acme := newOrganization(ctx, admin, "Acme")
	if _, err := acme.CreateWebhook(ctx, client.WebhookInput{
		Name: client.Ptr("SIEM"), URL: client.Ptr("https://siem.example.com/hooks/hookd"), Events: []string{"scan_completed"},
	}); err != nil {
		log.Fatal(err)
	}

	in := client.EventInput{
		ID:             "scan-42-completed", // 1–128 of A–Z a–z 0–9 _ . : -
		OrganizationID: orgID,
		Type:           "scan_completed",
		Data: map[string]any{
			"scan_id":      "scn_42",
			"target":       "https://shop.example.com",
			"completed_at": "2026-11-26T10:42:00Z",
			"findings":     map[string]int{"critical": 0, "high": 2},
		},
	}
	ev, created, err := admin.Publish(ctx, in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ev.ID, "created:", created, "deliveries:", ev.Deliveries)

	again, created, err := admin.Publish(ctx, in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(again.ID, "created:", created, "deliveries:", again.Deliveries, "same time:", again.CreatedAt.Equal(ev.CreatedAt))
	// Output:
	// scan-42-completed created: true deliveries: 1
	// scan-42-completed created: false deliveries: 1 same time: true
}

// WebhookInput's optional fields are pointers, so that "not set" differs
// from a zero value; client.Ptr makes them inline. On update only the
// fields set change.
func ExampleClient_CreateWebhook() {
	ctx := context.Background()
	baseURL, adminToken, stop := startHookd()
	defer stop()
	_, acme := newOrganization(ctx, client.New(baseURL, adminToken), "Acme")

	wh, err := acme.CreateWebhook(ctx, client.WebhookInput{
		Name:   client.Ptr("SIEM"),
		URL:    client.Ptr("https://siem.example.com/hooks/hookd"),
		Events: []string{"scan_completed", "scan_failed"},
		Secret: client.Ptr("s3cret"),
		// Active and IncludeCustomers are nil: the webhook is active and
		// receives the organization's own events only.
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(wh.Name, wh.URL, wh.Events, "active:", wh.Active, "has secret:", wh.HasSecret)

	// Pause it; the rest stays as it is. (Secret: client.Ptr("") would
	// remove the secret.)
	wh, err = acme.UpdateWebhook(ctx, wh.ID, client.WebhookInput{Active: client.Ptr(false)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(wh.Name, wh.Events, "active:", wh.Active, "has secret:", wh.HasSecret)
	// Output:
	// SIEM https://siem.example.com/hooks/hookd [scan_completed scan_failed] active: true has secret: true
	// SIEM [scan_completed scan_failed] active: false has secret: true
}

// Lists come newest first, a page at a time: pass NextCursor back as
// Cursor until it is nil.
func ExampleClient_ListDeliveries() {
	ctx := context.Background()
	baseURL, adminToken, stop := startHookd()
	defer stop()
	admin := client.New(baseURL, adminToken)
	orgID, acme := newOrganization(ctx, admin, "Acme")
	wh, err := acme.CreateWebhook(ctx, client.WebhookInput{
		Name: client.Ptr("SIEM"), URL: client.Ptr("https://siem.example.com/hooks/hookd"), Events: []string{"scan_started"},
	})
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, _, err := admin.Publish(ctx, client.EventInput{
			ID: fmt.Sprintf("scan-%d-started", i), OrganizationID: orgID, Type: "scan_started",
			Data: map[string]any{"scan_id": fmt.Sprintf("scn_%d", i), "target": "https://shop.example.com", "started_at": "2026-11-26T10:00:00Z"},
		}); err != nil {
			log.Fatal(err)
		}
	}

	opts := client.ListOptions{Limit: 2}
	for n := 1; ; n++ {
		page, err := acme.ListDeliveries(ctx, wh.ID, "pending", opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("page %d:", n)
		for _, d := range page.Data {
			fmt.Print(" ", d.EventID)
		}
		fmt.Println()
		if page.NextCursor == nil {
			break
		}
		opts.Cursor = *page.NextCursor
	}
	// Output:
	// page 1: scan-5-started scan-4-started
	// page 2: scan-3-started scan-2-started
	// page 3: scan-1-started
}

// Every error answer of the API is a *client.Error with the HTTP status,
// the code and, when one input field is at fault, the field; the message
// is for people.
func ExampleError() {
	ctx := context.Background()
	baseURL, adminToken, stop := startHookd()
	defer stop()
	_, acme := newOrganization(ctx, client.New(baseURL, adminToken), "Acme")

	// This server does not allow http:// targets (no --allow-http).
	_, err := acme.CreateWebhook(ctx, client.WebhookInput{
		Name: client.Ptr("legacy"), URL: client.Ptr("http://legacy.example.com/hook"), Events: []string{"scan_completed"},
	})
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Code == "invalid_argument" {
		fmt.Println(apiErr.Status, apiErr.Code, "field:", apiErr.Field)
	}

	// An id that does not exist, or belongs to another organization.
	_, err = acme.GetWebhook(ctx, "wh_01kb3kz2a4b6c8d0e2f4g6h8j0")
	if errors.As(err, &apiErr) && apiErr.Status == 404 {
		fmt.Println(apiErr.Status, apiErr.Code)
	}
	// Output:
	// 400 invalid_argument field: url
	// 404 not_found
}

// The catalog gives each event type's description, the JSON Schema of its
// data and an example; docs/events.md renders the same catalog.
func ExampleClient_EventType() {
	ctx := context.Background()
	baseURL, adminToken, stop := startHookd()
	defer stop()
	_, acme := newOrganization(ctx, client.New(baseURL, adminToken), "Acme")

	t, err := acme.EventType(ctx, "scan_completed")
	if err != nil {
		log.Fatal(err)
	}
	var schema struct {
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(t.Schema, &schema); err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Name, "requires", schema.Required)
	// Output:
	// scan_completed requires [scan_id target completed_at]
}

// startHookd runs the real hookd API in this process, on an embedded
// SQLite store in a temporary directory, as `hookd serve` would without
// --allow-http. stop shuts it down and removes the directory. Outside an
// example, point client.New at your hookd server instead.
func startHookd() (baseURL, adminToken string, stop func()) {
	dir, err := os.MkdirTemp("", "hookd-example-")
	if err != nil {
		log.Fatal(err)
	}
	key, err := seal.ParseKey(seal.GenerateKey())
	if err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "hookd.db"), Key: key})
	if err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	adminToken = "adm_example-admin-token"
	srv := httptest.NewServer(web.New(web.Config{
		Store:      db,
		AdminToken: adminToken,
		// Private targets allowed: the examples' made-up host names are
		// then not looked up in DNS.
		Targets: egress.Policy{AllowPrivate: true},
	}))
	return srv.URL, adminToken, func() {
		srv.Close()
		db.Close()
		os.RemoveAll(dir)
	}
}

// newOrganization creates an organization and an API key of it, and
// returns the organization's id and a client that uses the key.
func newOrganization(ctx context.Context, admin *client.Client, name string) (string, *client.Client) {
	org, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: name})
	if err != nil {
		log.Fatal(err)
	}
	key, err := admin.CreateAPIKey(ctx, org.ID, "examples")
	if err != nil {
		log.Fatal(err)
	}
	return org.ID, client.New(admin.BaseURL, key.Key)
}
