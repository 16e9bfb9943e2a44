package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hookd-dev/hookd"
)

// The webhooks-per-organization cap is SPEC §3's 100 unless the operator
// raises it (hookd serve --max-webhooks-per-organization).
func TestCreateWebhook_MaxPerOrganization(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config int // Config.MaxWebhooksPerOrganization
		want   int // webhooks allowed
	}{
		{"Default", 0, hookd.MaxWebhooksPerOrganization},
		{"Raised", 150, 150},
		{"Lowered", 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "hookd.db"), Key: testKey(t), MaxWebhooksPerOrganization: tc.config})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			org := &hookd.Organization{Name: "acme"}
			if err := db.CreateOrganization(ctx, org); err != nil {
				t.Fatal(err)
			}
			hook := func(i int) *hookd.Webhook {
				return &hookd.Webhook{OrganizationID: org.ID, Name: fmt.Sprint("hook ", i), URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}, Active: true}
			}
			for i := range tc.want {
				if err := db.CreateWebhook(ctx, hook(i)); err != nil {
					t.Fatalf("webhook %d of %d: %v", i+1, tc.want, err)
				}
			}
			err = db.CreateWebhook(ctx, hook(tc.want))
			if hookd.ErrorCode(err) != hookd.EINVALID {
				t.Fatalf("webhook %d: err = %v, want %s", tc.want+1, err, hookd.EINVALID)
			}
		})
	}
}
