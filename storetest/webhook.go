package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

func testWebhooks(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Create", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := &hookd.Webhook{
			OrganizationID: o.ID,
			Name:           "Ops",
			URL:            "https://ops.example.com/hooks?team=sec",
			Events:         []string{hookd.EventScanFailed, hookd.EventReportGenerated},
			Secret:         "s3cr3t with spaces and ünïcode",
			Active:         true,
		}
		if err := h.s.CreateWebhook(h.ctx, w); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(w.ID, hookd.PrefixWebhook) {
			t.Fatalf("ID = %q, want prefix %q", w.ID, hookd.PrefixWebhook)
		}
		wantNear(t, "CreatedAt", w.CreatedAt)
		if !w.UpdatedAt.Equal(w.CreatedAt) {
			t.Fatalf("UpdatedAt %v != CreatedAt %v on a new webhook", w.UpdatedAt, w.CreatedAt)
		}
		got, err := h.s.FindWebhook(h.ctx, o.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "found webhook", w, got)
		wantTime(t, "found UpdatedAt", got.UpdatedAt)
		if got.LastDeliveryStatus != "" {
			t.Fatalf("LastDeliveryStatus = %q without deliveries", got.LastDeliveryStatus)
		}
	})
	t.Run("SecretEncryptedAtRest", func(t *testing.T) {
		h := setup(t, open)
		const secret = "plain-secret-that-must-not-be-stored-as-is"
		w := h.webhook(h.org("").ID, func(w *hookd.Webhook) { w.Secret = secret })
		got, err := h.s.FindWebhook(h.ctx, w.OrganizationID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret != secret {
			t.Fatalf("Secret = %q, want %q", got.Secret, secret)
		}
		raw, ok := h.s.(RawSecretReader)
		if !ok {
			t.Skip("the store under test does not show its stored secrets (RawSecretReader)")
		}
		stored, err := raw.RawWebhookSecret(h.ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) == 0 || bytes.Contains(stored, []byte(secret)) || bytes.Contains(stored, []byte("must-not")) {
			t.Fatalf("stored secret %q is empty or holds the plaintext", stored)
		}
	})
	t.Run("NoSecret", func(t *testing.T) {
		h := setup(t, open)
		w := h.webhook(h.org("").ID, noSecret)
		got, err := h.s.FindWebhook(h.ctx, w.OrganizationID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Secret != "" {
			t.Fatalf("Secret = %q, want none", got.Secret)
		}
	})
	t.Run("ErrOrganizationNotFound", func(t *testing.T) {
		h := setup(t, open)
		w := &hookd.Webhook{OrganizationID: "org_nosuch", Name: "x", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}}
		wantCode(t, h.s.CreateWebhook(h.ctx, w), hookd.ENOTFOUND, "")
	})
	t.Run("ErrTooMany", func(t *testing.T) {
		h := setup(t, open)
		o, other := h.org(""), h.org("")
		for range hookd.MaxWebhooksPerOrganization {
			h.webhook(o.ID)
		}
		extra := &hookd.Webhook{OrganizationID: o.ID, Name: "one too many", URL: "https://x.example.com", Events: []string{hookd.EventScanStarted}}
		wantCode(t, h.s.CreateWebhook(h.ctx, extra), hookd.EINVALID, "")
		h.webhook(other.ID) // the limit is per organization
		// Deleting one makes room again.
		list, _, err := h.s.ListWebhooks(h.ctx, o.ID, hookd.Page{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.s.DeleteWebhook(h.ctx, o.ID, list[0].ID); err != nil {
			t.Fatal(err)
		}
		h.webhook(o.ID)
	})
	t.Run("OtherOrganization", func(t *testing.T) {
		h := setup(t, open)
		owner, intruder := h.org(""), h.org("")
		w := h.webhook(owner.ID)
		_, err := h.s.FindWebhook(h.ctx, intruder.ID, w.ID)
		wantCode(t, err, hookd.ENOTFOUND, "")
		called := false
		_, err = h.s.UpdateWebhook(h.ctx, intruder.ID, w.ID, func(w *hookd.Webhook) error { called = true; return nil })
		wantCode(t, err, hookd.ENOTFOUND, "")
		if called {
			t.Fatal("UpdateWebhook called update on another organization's webhook")
		}
		wantCode(t, h.s.DeleteWebhook(h.ctx, intruder.ID, w.ID), hookd.ENOTFOUND, "")
		_, err = h.s.CreatePing(h.ctx, intruder.ID, w.ID)
		wantCode(t, err, hookd.ENOTFOUND, "")
		_, _, err = h.s.ListDeliveries(h.ctx, intruder.ID, w.ID, "", hookd.Page{Limit: 10})
		wantCode(t, err, hookd.ENOTFOUND, "")
		if list, _, err := h.s.ListWebhooks(h.ctx, intruder.ID, hookd.Page{Limit: 10}); err != nil || len(list) != 0 {
			t.Fatalf("ListWebhooks(intruder) = %v, %v; want none", list, err)
		}
		// Still there, unchanged, for its owner.
		got, err := h.s.FindWebhook(h.ctx, owner.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "webhook after another organization's attempts", w, got)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		_, err := h.s.FindWebhook(h.ctx, o.ID, "wh_nosuch")
		wantCode(t, err, hookd.ENOTFOUND, "")
		_, err = h.s.UpdateWebhook(h.ctx, o.ID, "wh_nosuch", func(*hookd.Webhook) error { return nil })
		wantCode(t, err, hookd.ENOTFOUND, "")
		wantCode(t, h.s.DeleteWebhook(h.ctx, o.ID, "wh_nosuch"), hookd.ENOTFOUND, "")
	})
	t.Run("ListPagination", func(t *testing.T) {
		h := setup(t, open)
		o, other := h.org(""), h.org("")
		var created []string
		for i := range 7 {
			created = append(created, h.webhook(o.ID, func(w *hookd.Webhook) { w.Name = fmt.Sprint("hook ", i) }).ID)
		}
		h.webhook(other.ID)
		slices.Reverse(created) // newest first

		var got []string
		after := ""
		for page := 0; ; page++ {
			list, next, err := h.s.ListWebhooks(h.ctx, o.ID, hookd.Page{Limit: 3, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if want := min(3, 7-3*page); len(list) != want {
				t.Fatalf("page %d has %d webhooks, want %d", page, len(list), want)
			}
			for _, w := range list {
				got = append(got, w.ID)
				if w.Secret == "" || w.OrganizationID != o.ID {
					t.Fatalf("listed webhook %s: secret %q, organization %s", w.ID, w.Secret, w.OrganizationID)
				}
			}
			if next == "" {
				break
			}
			if next != list[len(list)-1].ID {
				t.Fatalf("next = %q, want the last id of the page %q", next, list[len(list)-1].ID)
			}
			after = next
		}
		if !slices.Equal(got, created) {
			t.Fatalf("listed %v, want newest first %v", got, created)
		}
		// A page that ends exactly at the last webhook says so.
		list, next, err := h.s.ListWebhooks(h.ctx, o.ID, hookd.Page{Limit: 7})
		if err != nil || len(list) != 7 || next != "" {
			t.Fatalf("ListWebhooks(limit 7) = %d webhooks, next %q, %v; want 7, \"\"", len(list), next, err)
		}
	})
	t.Run("Update", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		time.Sleep(2 * time.Millisecond) // so that UpdatedAt can move
		got, err := h.s.UpdateWebhook(h.ctx, o.ID, w.ID, func(u *hookd.Webhook) error {
			u.Name, u.URL, u.Events = "Renamed", "https://new.example.com/in", []string{hookd.EventScanStopped}
			u.Secret, u.Active, u.IncludeCustomers = "", false, true
			u.ID, u.OrganizationID, u.CreatedAt = "wh_hijack", "org_hijack", time.Unix(0, 0) // not the caller's to change
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := *w
		want.Name, want.URL, want.Events = "Renamed", "https://new.example.com/in", []string{hookd.EventScanStopped}
		want.Secret, want.Active, want.IncludeCustomers = "", false, true
		want.UpdatedAt = got.UpdatedAt
		wantEqual(t, "updated webhook", &want, got)
		wantTime(t, "UpdatedAt", got.UpdatedAt)
		if !got.UpdatedAt.After(w.UpdatedAt) {
			t.Fatalf("UpdatedAt %v did not move past %v", got.UpdatedAt, w.UpdatedAt)
		}
		found, err := h.s.FindWebhook(h.ctx, o.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "webhook read after update", got, found)
		if _, err := h.s.FindWebhook(h.ctx, "org_hijack", "wh_hijack"); hookd.ErrorCode(err) != hookd.ENOTFOUND {
			t.Fatalf("update changed the webhook's identity: %v", err)
		}
	})
	t.Run("UpdateErrorWritesNothing", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		refusal := hookd.FieldErrorf("url", "no")
		_, err := h.s.UpdateWebhook(h.ctx, o.ID, w.ID, func(u *hookd.Webhook) error {
			u.Name, u.Secret = "Half done", ""
			return refusal
		})
		if err != refusal {
			t.Fatalf("UpdateWebhook error = %v, want update's error as is", err)
		}
		got, err := h.s.FindWebhook(h.ctx, o.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "webhook after a refused update", w, got)
	})
	t.Run("LastDeliveryStatus", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		w := h.webhook(o.ID)
		quiet := h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted))
		jobs := h.claim(time.Now(), 10, 10)
		if _, err := h.s.UpdateWebhook(h.ctx, o.ID, quiet.ID, func(w *hookd.Webhook) error { w.Active = false; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.WebhookID == w.ID {
				h.complete(failed(j, time.Now()))
			} else {
				h.complete(delivered(j, time.Now()))
			}
		}
		h.publish(event(o.ID, hookd.EventScanStarted)) // the newest of w is pending again; quiet gets nothing
		got, err := h.s.FindWebhook(h.ctx, o.ID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastDeliveryStatus != hookd.DeliveryPending {
			t.Fatalf("FindWebhook: LastDeliveryStatus = %q, want pending", got.LastDeliveryStatus)
		}
		list, _, err := h.s.ListWebhooks(h.ctx, o.ID, hookd.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]hookd.DeliveryStatus{w.ID: hookd.DeliveryPending, quiet.ID: hookd.DeliveryDelivered}
		for _, l := range list {
			if l.LastDeliveryStatus != want[l.ID] {
				t.Fatalf("ListWebhooks: %s LastDeliveryStatus = %q, want %q", l.ID, l.LastDeliveryStatus, want[l.ID])
			}
		}
	})
	t.Run("DeleteDropsDeliveries", func(t *testing.T) {
		h := setup(t, open)
		o := h.org("")
		doomed, kept := h.webhook(o.ID), h.webhook(o.ID)
		h.publish(event(o.ID, hookd.EventScanCompleted), event(o.ID, hookd.EventScanStarted))
		now := time.Now()
		var inFlight *hookd.Job
		var others []*hookd.Job
		for _, j := range h.claim(now, 10, 0) {
			if j.WebhookID == doomed.ID && inFlight == nil {
				inFlight = j
			} else {
				others = append(others, j)
			}
		}
		if err := h.s.ReleaseJobs(h.ctx, others); err != nil {
			t.Fatal(err)
		}
		h.wantCounts(4, 0, 0)
		doomedDelivery := inFlight.DeliveryID

		if err := h.s.DeleteWebhook(h.ctx, o.ID, doomed.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.s.FindWebhook(h.ctx, o.ID, doomed.ID); hookd.ErrorCode(err) != hookd.ENOTFOUND {
			t.Fatalf("FindWebhook after delete: %v, want not found", err)
		}
		_, err := h.s.FindDelivery(h.ctx, o.ID, doomed.ID, doomedDelivery)
		wantCode(t, err, hookd.ENOTFOUND, "")
		h.wantCounts(2, 0, 0)
		// An attempt in flight when the webhook went is dropped quietly.
		if err := h.s.CompleteAttempts(h.ctx, []*hookd.AttemptResult{delivered(inFlight, now)}); err != nil {
			t.Fatalf("CompleteAttempts after delete: %v", err)
		}
		h.wantCounts(2, 0, 0)
		// The deleted webhook's pending deliveries are never claimed.
		jobs := h.claim(now.Add(time.Hour), 100, 0)
		for _, j := range jobs {
			if j.WebhookID != kept.ID {
				t.Fatalf("claimed delivery %s of the deleted webhook", j.DeliveryID)
			}
		}
		if len(jobs) != 2 {
			t.Fatalf("claimed %d deliveries, want the other webhook's 2", len(jobs))
		}
		if n := len(h.deliveries(kept, "")); n != 2 {
			t.Fatalf("the other webhook has %d deliveries, want 2", n)
		}
	})
}
