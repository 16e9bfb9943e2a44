// Package hookd is the glossary of the webhook service: organizations,
// webhooks, events, deliveries and attempts, their validation rules, the
// event catalog and the error vocabulary. It imports nothing from the rest
// of the project; the stores, the dispatcher and the web front ends speak in
// its types.
package hookd

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// Version is the release of hookd; the User-Agent of every delivery carries
// it. Release builds set it with -ldflags "-X github.com/hookd-dev/hookd.Version=…".
var Version = DevVersion

// DevVersion is Version in a build that was given none.
const DevVersion = "0.1.0-dev"

// Id prefixes, one per kind of object.
const (
	PrefixOrganization = "org_"
	PrefixWebhook      = "wh_"
	PrefixEvent        = "evt_"
	PrefixDelivery     = "dlv_"
	PrefixAPIKey       = "key_"
	PrefixUser         = "usr_"
)

// Page selects one page of a list, newest first. After is the id of the last
// object of the previous page ("" for the first page); Limit is 1–200.
type Page struct {
	Limit int
	After string
}

// Page limits of SPEC §3.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
)

// crockford is Crockford's base32 alphabet in lower case: ids stay readable,
// unambiguous and, since the alphabet is in ASCII order, sortable as text.
const crockford = "0123456789abcdefghjkmnpqrstvwxyz"

var idGen struct {
	sync.Mutex
	lastMS  uint64
	counter uint64
}

// NewID returns prefix followed by 26 characters: 48 bits of milliseconds
// since the Unix epoch, a 16-bit counter and 64 random bits. Ids made by one
// process sort as text in the order they were made, so lists can be ordered
// and paged by id alone.
func NewID(prefix string) string {
	ms := uint64(time.Now().UnixMilli())
	idGen.Lock()
	if ms <= idGen.lastMS {
		ms = idGen.lastMS
		idGen.counter++
		if idGen.counter > 0xffff { // 65 536 ids in one millisecond: borrow the next one
			ms++
			idGen.counter = 0
		}
	} else {
		idGen.counter = 0
	}
	idGen.lastMS = ms
	counter := idGen.counter
	idGen.Unlock()

	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16|counter)
	rand.Read(b[8:])
	// 128 bits → 26 base32 characters (130 bits, top two always zero).
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return prefix + string(out[:])
}
