// Package storetest is the conformance suite every hookd store passes: the
// embedded SQLite store always, PostgreSQL when HOOKD_TEST_POSTGRES_URL is
// set. A store is correct when Run passes against it.
package storetest

import (
	"context"
	"time"

	"github.com/hookd-dev/hookd"
)

// Store is the whole contract of a hookd store. Errors are *hookd.Error
// with the codes named on each method; anything else is an internal error.
// Times are UTC and truncated to milliseconds, and a value a method returns
// equals what later reads return.
type Store interface {
	// Ping checks that the store answers (readiness).
	Ping(ctx context.Context) error
	Close() error

	// CreateOrganization sets o.ID and o.CreatedAt and stores o.
	// ENOTFOUND (field partner_id) when PartnerID names no organization;
	// EINVALID (field partner_id) when the partner has a partner itself.
	CreateOrganization(ctx context.Context, o *hookd.Organization) error
	// FindOrganization returns the organization with IsPartner filled. ENOTFOUND.
	FindOrganization(ctx context.Context, id string) (*hookd.Organization, error)

	// CreateAPIKey sets k.ID and k.CreatedAt and stores k (Prefix and Hash
	// given by the caller). ENOTFOUND when the organization does not exist.
	CreateAPIKey(ctx context.Context, k *hookd.APIKey) error
	// FindAPIKeys returns the keys whose Prefix is prefix (normally one; the
	// caller compares hashes in constant time).
	FindAPIKeys(ctx context.Context, prefix string) ([]*hookd.APIKey, error)
	// DeleteAPIKey removes a key of organization orgID; it stops working at
	// once. ENOTFOUND when the key does not exist or belongs to another
	// organization.
	DeleteAPIKey(ctx context.Context, orgID, keyID string) error

	// CreateUser sets u.ID and u.CreatedAt and stores u, with Email
	// normalised (hookd.NormalizeEmail). ENOTFOUND when the organization does
	// not exist; ECONFLICT (field email) when the email is taken.
	CreateUser(ctx context.Context, u *hookd.User) error
	// FindUserByEmail looks the email up in normalised form. ENOTFOUND.
	FindUserByEmail(ctx context.Context, email string) (*hookd.User, error)
	// FindUser returns a user by id. ENOTFOUND.
	FindUser(ctx context.Context, id string) (*hookd.User, error)

	// CreateSession stores a portal session (TokenHash, UserID,
	// OrganizationID and ExpiresAt given; CreatedAt set). ENOTFOUND when the
	// user does not exist.
	CreateSession(ctx context.Context, s *hookd.Session) error
	// FindSession returns the session with that token hash if it has not
	// expired at now. ENOTFOUND otherwise.
	FindSession(ctx context.Context, tokenHash []byte, now time.Time) (*hookd.Session, error)
	// DeleteSession removes a session (sign-out); removing one that does
	// not exist is not an error.
	DeleteSession(ctx context.Context, tokenHash []byte) error

	// CreateWebhook sets w.ID, CreatedAt and UpdatedAt and stores w, its
	// Secret encrypted. EINVALID when the organization already has as many
	// webhooks as the store allows (hookd.MaxWebhooksPerOrganization unless
	// its configuration raises it); ENOTFOUND when the organization does
	// not exist.
	CreateWebhook(ctx context.Context, w *hookd.Webhook) error
	// FindWebhook returns webhook id of organization orgID, Secret decrypted
	// and LastDeliveryStatus filled, with its health (DisabledReason,
	// DisabledAt, ConsecutiveFailures, FailingSince) as stored. ENOTFOUND,
	// also when it belongs to another organization.
	FindWebhook(ctx context.Context, orgID, id string) (*hookd.Webhook, error)
	// ListWebhooks returns a page of orgID's webhooks, newest first, and the
	// id to pass as Page.After for the next page ("" on the last page).
	ListWebhooks(ctx context.Context, orgID string, p hookd.Page) ([]*hookd.Webhook, string, error)
	// UpdateWebhook loads the webhook, calls update on it and, when update
	// returns nil, stores the result with a new UpdatedAt, all in one
	// transaction. update runs while the transaction holds its locks (on
	// SQLite, the whole database's write lock), so it must be quick and do
	// no I/O. update's error is returned as is and nothing is written.
	// Only Name, URL, Events, Secret, Active and IncludeCustomers are
	// stored; an update that makes an inactive webhook active also enables
	// it (hookd.Webhook.Enable: no disabled reason, health afresh).
	// ENOTFOUND as FindWebhook.
	UpdateWebhook(ctx context.Context, orgID, id string, update func(*hookd.Webhook) error) (*hookd.Webhook, error)
	// EnableWebhook makes the webhook active, clears DisabledReason and
	// DisabledAt and starts its health afresh, with a new UpdatedAt. When
	// redeliverFailed is set and the webhook had been disabled
	// automatically, every failed delivery of the webhook created, last
	// attempted or failed by the disabling at or after its FailingSince
	// (the first failure of the run that disabled it) is made pending again
	// as Redeliver does (due now, a fresh round, no lease, same id). All in
	// one transaction; it returns the webhook and how many deliveries it
	// made pending. Enabling an enabled webhook is not an error.
	// ENOTFOUND as FindWebhook, and nothing changes.
	EnableWebhook(ctx context.Context, orgID, id string, redeliverFailed bool) (*hookd.Webhook, int, error)
	// DeleteWebhook removes the webhook with its deliveries and attempts;
	// its pending deliveries are never sent. ENOTFOUND as FindWebhook.
	DeleteWebhook(ctx context.Context, orgID, id string) error

	// PublishEvents stores the events in one transaction: for each, the
	// event and one pending delivery, due now, for every matching webhook
	// (the organization's active webhooks subscribed to the type, plus its
	// partner's active include_customers webhooks subscribed to it). An
	// event whose ID was already published for its organization (earlier or
	// earlier in this batch) creates nothing; its result is the first event
	// with Created false. An event's TraceParent is stored with it and
	// comes back in the Jobs that ClaimDeliveries makes of its deliveries.
	// Events without ID get a fresh "evt_" id. Results come in the order
	// of events; a created event's result has its ID,
	// CreatedAt (the time of publishing) and Deliveries set. All or
	// nothing: ENOTFOUND (field organization_id) when an organization does
	// not exist, and nothing is written.
	PublishEvents(ctx context.Context, events []*hookd.Event) ([]hookd.PublishResult, error)

	// CreatePing stores a ping event and one pending delivery of it to the
	// webhook, due now, whatever the webhook subscribes to and whether or
	// not it is active. ENOTFOUND as FindWebhook.
	CreatePing(ctx context.Context, orgID, webhookID string) (*hookd.Delivery, error)
	// ListDeliveries returns a page of a webhook's deliveries, newest first,
	// only those with status when status is not "". ENOTFOUND as FindWebhook.
	ListDeliveries(ctx context.Context, orgID, webhookID string, status hookd.DeliveryStatus, p hookd.Page) ([]*hookd.Delivery, string, error)
	// FindDelivery returns one delivery with Event and AttemptLog filled.
	// ENOTFOUND unless the delivery belongs to that webhook of that organization.
	FindDelivery(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error)
	// Redeliver makes the delivery pending again, due now, with a fresh round
	// (RoundStart = Attempts) and no lease: a dispatcher still holding the
	// old lease cannot change it any more. ENOTFOUND as FindDelivery.
	Redeliver(ctx context.Context, orgID, webhookID, deliveryID string) (*hookd.Delivery, error)

	// ClaimDeliveries leases up to limit pending deliveries due at now whose
	// lease is absent or expired (lease_until <= now), oldest due first,
	// until leaseUntil, taking at most perWebhook deliveries of any one
	// webhook counting those already leased and unexpired (perWebhook <= 0:
	// no cap). Each Job carries a fresh lease token, unique to the job.
	ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit, perWebhook int) ([]*hookd.Job, error)
	// CompleteAttempts logs each result's attempt and, where the job's lease
	// is still the delivery's, moves the delivery to the result's status
	// (Attempts = the attempt's number, LastAttemptAt, LastStatusCode,
	// NextAttemptAt when pending) and clears the lease, all in one
	// transaction. Results of deleted deliveries are dropped.
	//
	// In the same transaction, each result whose lease was current counts
	// towards its webhook's health under the store's hookd.HealthPolicy, in
	// the order given (hookd.HealthPolicy.Record): when a rule is met the
	// webhook is disabled (inactive, DisabledReason and DisabledAt set),
	// and its pending deliveries become failed with their leases cleared,
	// so they are not attempted any more and a dispatcher still holding a
	// lease on one cannot change it.
	CompleteAttempts(ctx context.Context, results []*hookd.AttemptResult) error
	// ReleaseJobs clears the leases of jobs that were not attempted, so the
	// deliveries are claimed again at once (by this or another process).
	ReleaseJobs(ctx context.Context, jobs []*hookd.Job) error
	// NextDue returns when the earliest pending delivery becomes claimable
	// (its next attempt time, or its lease expiry when later), and false
	// when nothing is pending.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// CountDeliveries returns how many deliveries have each status, with
	// every status in the map.
	CountDeliveries(ctx context.Context) (map[hookd.DeliveryStatus]int, error)

	// Prune deletes, in one short transaction, what is older than before
	// among at most limit events, taken in the order they were published
	// from the cursor after ("" = the oldest): delivered deliveries whose
	// last attempt started before before, with their attempts; attempts
	// started before before of the other deliveries, except the newest of
	// each, so that a failed or pending delivery keeps its row, its status,
	// its redelivery and the log of why it stands where it does; and the
	// events published before before that have no delivery left. Pending
	// deliveries' rows and leases are never touched. The walk stops at the
	// first event published at or after before (Next = ""); otherwise Next
	// is the cursor of the next call. A limit below 1 is an internal error.
	Prune(ctx context.Context, before time.Time, after string, limit int) (hookd.PruneResult, error)
}
