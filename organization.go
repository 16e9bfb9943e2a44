package hookd

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Organization is a tenant. PartnerID, when set, names the partner that
// manages it; partners cannot themselves have a partner (one level only).
type Organization struct {
	ID        string
	Name      string
	PartnerID string // "" when the organization has no partner
	CreatedAt time.Time

	// IsPartner reports whether at least one organization names this one as
	// its partner (SPEC §1: "an organization with customers is a partner").
	// Stores fill it on reads; it is not stored.
	IsPartner bool
}

// Validate checks the fields a caller supplies. Whether PartnerID exists and
// has no partner itself is checked by the store, inside its transaction.
func (o *Organization) Validate() error {
	return validateName("name", o.Name)
}

// validateName applies SPEC §3's rule for names: 1–100 characters. A name of
// only white space or with control characters is refused too: it would show
// as blank or garble the portal and the logs.
func validateName(field, name string) error {
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return FieldErrorf(field, "%s must be valid UTF-8", field)
	case strings.TrimSpace(name) == "":
		return FieldErrorf(field, "%s is required", field)
	case n > 100:
		return FieldErrorf(field, "%s must be at most 100 characters", field)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return FieldErrorf(field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// APIKey is an organization's credential for the API. Only a hash of the key
// is stored; the key itself is shown once, when it is created.
type APIKey struct {
	ID             string
	OrganizationID string
	Name           string
	Prefix         string // the key's first characters, to find its row
	Hash           []byte // SHA-256 of the whole key
	CreatedAt      time.Time
}

// Validate checks the fields a caller supplies.
func (k *APIKey) Validate() error { return validateName("name", k.Name) }

// apiKeyPrefixLen is how much of a key is stored in clear as its lookup
// prefix: "hk_" and 8 random characters (40 bits), enough to find one row,
// far too little to help guess the remaining 215 bits.
const apiKeyPrefixLen = 11

// NewAPIKey returns a fresh key "hk_" + 52 base32 characters (256 bits of
// randomness), its lookup prefix and its hash.
func NewAPIKey() (key, prefix string, hash []byte) {
	var b [52]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = crockford[b[i]&31]
	}
	key = "hk_" + string(b[:])
	return key, key[:apiKeyPrefixLen], HashAPIKey(key)
}

// SplitAPIKey returns the lookup prefix and hash of a presented key, and
// false when it cannot be a hookd key at all.
func SplitAPIKey(key string) (prefix string, hash []byte, ok bool) {
	if !strings.HasPrefix(key, "hk_") || len(key) != 3+52 {
		return "", nil, false
	}
	return key[:apiKeyPrefixLen], HashAPIKey(key), true
}

// HashAPIKey is SHA-256: API keys carry 256 random bits, so a slow password
// hash would add cost to every request and no security.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// User is a portal login of one organization.
type User struct {
	ID             string
	OrganizationID string
	Email          string
	PasswordHash   []byte // bcrypt
	CreatedAt      time.Time
}

// Password limits: bcrypt reads at most 72 bytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

// ValidateUser checks an email and a password as given to the API.
func ValidateUser(email, password string) error {
	email = strings.TrimSpace(email)
	at := strings.LastIndexByte(email, '@')
	switch {
	case email == "":
		return FieldErrorf("email", "email is required")
	case len(email) > 254 || at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n<>,;\"") || !utf8.ValidString(email):
		return FieldErrorf("email", "email must be an address like name@example.com")
	case len(password) < MinPasswordLen:
		return FieldErrorf("password", "password must be at least %d bytes", MinPasswordLen)
	case len(password) > MaxPasswordLen:
		return FieldErrorf("password", "password must be at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// NormalizeEmail is the form emails are stored and looked up in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Session is a signed-in portal user. The cookie carries a random token;
// the store keeps only its SHA-256, so a copy of the database cannot be
// replayed as a login. Signing out deletes the row, which ends the session
// on every node at once.
type Session struct {
	TokenHash      []byte
	UserID         string
	OrganizationID string
	CreatedAt      time.Time
	ExpiresAt      time.Time
}
