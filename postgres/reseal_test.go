package postgres

import (
	"context"
	"testing"

	"github.com/hookd-dev/hookd"
)

// ResealSecrets moves every secret to the new key: a store opened with it
// reads them, one opened with the old key no longer does.
func TestResealSecrets(t *testing.T) {
	dbURL := testURL(t)
	schema := freshSchema(t, dbURL)
	oldKey, newKey := testKey(t), testKey(t)
	ctx := context.Background()
	db := openSchema(t, dbURL, schema, oldKey)
	org := &hookd.Organization{Name: "Acme"}
	if err := db.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	with := &hookd.Webhook{OrganizationID: org.ID, Name: "a", URL: "https://a.example/", Events: []string{"scan_started"}, Secret: "s3cret", Active: true}
	without := &hookd.Webhook{OrganizationID: org.ID, Name: "b", URL: "https://b.example/", Events: []string{"scan_started"}, Active: true}
	for _, w := range []*hookd.Webhook{with, without} {
		if err := db.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.ResealSecrets(ctx, newKey)
	if err != nil || n != 1 {
		t.Fatalf("ResealSecrets = %d, %v; want 1", n, err)
	}
	db.Close()

	fresh := openSchema(t, dbURL, schema, newKey)
	if w, err := fresh.FindWebhook(ctx, org.ID, with.ID); err != nil || w.Secret != "s3cret" {
		t.Fatalf("with the new key: %+v, %v", w, err)
	}
	if w, err := fresh.FindWebhook(ctx, org.ID, without.ID); err != nil || w.Secret != "" {
		t.Fatalf("a webhook without a secret: %+v, %v", w, err)
	}
	stale := openSchema(t, dbURL, schema, oldKey)
	if _, err := stale.FindWebhook(ctx, org.ID, with.ID); err == nil {
		t.Fatal("the old key still opens the re-sealed secret")
	}
}
