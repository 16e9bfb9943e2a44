package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/hookd-dev/hookd/client"
	"github.com/hookd-dev/hookd/egress"
	"github.com/hookd-dev/hookd/seal"
	"github.com/hookd-dev/hookd/sqlite"
	"github.com/hookd-dev/hookd/web"
)

const adminToken = "admin-token-0123456789"

// newServer runs the real API on a real SQLite store.
func newServer(t *testing.T) string {
	t.Helper()
	key, _ := seal.ParseKey(seal.GenerateKey())
	db, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := httptest.NewServer(web.New(web.Config{Store: db, AdminToken: adminToken, AllowHTTP: true,
		Targets: egress.Policy{AllowPrivate: true, AllowHTTP: true}}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// The client covers the life of a webhook, as a publisher and a tenant
// would use it.
func TestClient_WebhookLifecycle(t *testing.T) {
	ctx := context.Background()
	base := newServer(t)
	admin := client.New(base, adminToken)

	org, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateAPIKey(ctx, org.ID, "ci")
	if err != nil || key.Key == "" {
		t.Fatalf("CreateAPIKey = %+v, %v", key, err)
	}
	tenant := client.New(base, key.Key)
	wh, err := tenant.CreateWebhook(ctx, client.WebhookInput{
		Name: client.Ptr("ci"), URL: client.Ptr("http://127.0.0.1:9/hook"), Events: []string{"scan_completed"}, Secret: client.Ptr("s"),
	})
	if err != nil || !wh.HasSecret || !wh.Active {
		t.Fatalf("CreateWebhook = %+v, %v", wh, err)
	}
	ev, created, err := admin.Publish(ctx, client.EventInput{ID: "scan-1", OrganizationID: org.ID, Type: "scan_completed", Data: map[string]any{"scan_id": "1"}})
	if err != nil || !created || ev.Deliveries != 1 {
		t.Fatalf("Publish = %+v, created %v, %v", ev, created, err)
	}
	again, created, err := admin.Publish(ctx, client.EventInput{ID: "scan-1", OrganizationID: org.ID, Type: "scan_completed", Data: map[string]any{}})
	if err != nil || created || again.ID != ev.ID {
		t.Fatalf("republish = %+v, created %v, %v; want the first event, not created", again, created, err)
	}
	page, err := tenant.ListDeliveries(ctx, wh.ID, "pending", client.ListOptions{Limit: 10})
	if err != nil || len(page.Data) != 1 || page.NextCursor != nil {
		t.Fatalf("ListDeliveries = %+v, %v", page, err)
	}
	d, err := tenant.GetDelivery(ctx, wh.ID, page.Data[0].ID)
	if err != nil || d.Request.Headers["X-CG-Hook-Signature"] == "" || d.Request.Body == "" {
		t.Fatalf("GetDelivery = %+v, %v", d, err)
	}
	wh, err = tenant.UpdateWebhook(ctx, wh.ID, client.WebhookInput{Active: client.Ptr(false), Secret: client.Ptr("")})
	if err != nil || wh.Active || wh.HasSecret {
		t.Fatalf("UpdateWebhook = %+v, %v", wh, err)
	}
	if err := tenant.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.GetWebhook(ctx, wh.ID); !isCode(err, 404, "not_found") {
		t.Fatalf("GetWebhook after delete: %v", err)
	}
}

// API errors come back as *client.Error with the SPEC's code and field.
func TestClient_Errors(t *testing.T) {
	ctx := context.Background()
	base := newServer(t)
	admin := client.New(base, adminToken)
	_, err := admin.CreateOrganization(ctx, client.OrganizationInput{Name: ""})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 400 || e.Code != "invalid_argument" || e.Field != "name" {
		t.Fatalf("err = %#v", err)
	}
	if _, err := client.New(base, "wrong").EventTypes(ctx); !isCode(err, 401, "unauthenticated") {
		t.Fatalf("bad token: %v", err)
	}
}

func isCode(err error, status int, code string) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status == status && e.Code == code
}
