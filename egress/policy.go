// Package egress is the HTTP client that reaches receivers. It enforces the
// network policy of SPEC §6 on the address actually dialed, bounds every
// attempt in time and in how much of the answer it reads, never follows
// redirects and never uses a proxy from the environment.
package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hookd-dev/hookd"
)

// ErrRefused is the error for a target address the network policy does not
// allow. Its text is deliberately the same for every refused range, so that
// a webhook owner cannot use hookd to map which internal ranges exist.
var ErrRefused = errors.New("target address is not allowed by the network policy")

// ErrScheme is the error for a target URL whose scheme the policy does not
// allow: anything but https, or http when AllowHTTP is off.
var ErrScheme = errors.New("target URL scheme is not allowed: use https://")

// Policy decides which targets hookd may connect to.
type Policy struct {
	// AllowPrivate turns the address check off (--allow-private-targets),
	// for development and for receivers on a private network.
	AllowPrivate bool
	// AllowHTTP permits plain http:// targets (--allow-http).
	AllowHTTP bool
	// Resolver resolves target names, both in CheckURL and at dial time;
	// nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// refusedV4 and refusedV6 are the ranges hookd never connects to unless
// AllowPrivate is set. The rule is IANA's special-purpose address
// registries: whatever is not globally reachable unicast is refused. IPv6
// spellings of IPv4 addresses are not listed here; CheckAddr reduces them to
// the embedded IPv4 address first (see embeddedV4).
//
//	range               what it is                                  source
//	0.0.0.0/8           "this network", unspecified                 RFC 791, 1122
//	10.0.0.0/8          private                                     RFC 1918
//	100.64.0.0/10       carrier-grade NAT (also Alibaba metadata)   RFC 6598
//	127.0.0.0/8         loopback                                    RFC 1122
//	169.254.0.0/16      link-local; cloud metadata 169.254.169.254  RFC 3927
//	172.16.0.0/12       private                                     RFC 1918
//	192.0.0.0/24        IETF protocol assignments                   RFC 6890
//	192.0.2.0/24        documentation TEST-NET-1                    RFC 5737
//	192.88.99.0/24      6to4 relay anycast, deprecated              RFC 7526
//	192.168.0.0/16      private                                     RFC 1918
//	198.18.0.0/15       benchmarking; lab and fake-IP networks      RFC 2544
//	198.51.100.0/24     documentation TEST-NET-2                    RFC 5737
//	203.0.113.0/24      documentation TEST-NET-3                    RFC 5737
//	224.0.0.0/4         multicast                                   RFC 5771
//	240.0.0.0/4         reserved, incl. broadcast 255.255.255.255   RFC 1112, 919
//	168.63.129.16/32    Azure platform endpoint (wire server)       Azure docs
//
//	::/128              unspecified                                 RFC 4291
//	::1/128             loopback                                    RFC 4291
//	::/96               IPv4-compatible ::a.b.c.d, deprecated       RFC 4291
//	::ffff:0:0:0/96     IPv4-translated, not routed                 RFC 2765
//	64:ff9b:1::/48      local-use NAT64                             RFC 8215
//	100::/64            discard-only                                RFC 6666
//	2001::/23           IETF protocol assignments, incl. Teredo     RFC 2928, 4380
//	2001:db8::/32       documentation                               RFC 3849
//	3fff::/20           documentation                               RFC 9637
//	5f00::/16           SRv6 SIDs                                   RFC 9602
//	fc00::/7            unique local; AWS metadata fd00:ec2::254    RFC 4193
//	fe80::/10           link-local                                  RFC 4291
//	fec0::/10           site-local, deprecated                      RFC 3879
//	ff00::/8            multicast                                   RFC 4291
//
// Judged by the IPv4 address they embed, against the IPv4 rows above:
//
//	::ffff:0:0/96       IPv4-mapped ::ffff:a.b.c.d                  RFC 4291
//	64:ff9b::/96        NAT64 well-known prefix 64:ff9b::a.b.c.d    RFC 6052
//	2002::/16           6to4 2002:aabb:ccdd::/48                    RFC 3056
//
// Beyond the table, any IPv6 address outside 2000::/3, the only block IANA
// allocates for global unicast, is refused: that catches ranges defined
// after this table was written.
var (
	refusedV4 = prefixes(
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
		"169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24",
		"192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
		"203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "168.63.129.16/32",
	)
	refusedV6 = prefixes(
		"::/128", "::1/128", "::/96", "::ffff:0:0:0/96", "64:ff9b:1::/48",
		"100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
		"fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	)
	globalUnicastV6 = netip.MustParsePrefix("2000::/3")
	nat64V6         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFourV6     = netip.MustParsePrefix("2002::/16")
)

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// CheckAddr returns ErrRefused when ip is in a refused range (the table is
// in policy.go) and the policy does not allow private targets, and nil otherwise.
// IPv6 addresses that carry an IPv4 address are judged by that IPv4
// address: IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d and 6to4
// 2002:aabb:ccdd::. Teredo (2001::/32) is refused outright: its embedded
// addresses are obfuscated, the service is retired, and no legitimate
// receiver is reachable only through it. So are the deprecated
// IPv4-compatible ::a.b.c.d and the IPv4-translated ::ffff:0:a.b.c.d,
// whatever they embed. An invalid address is always refused.
func (p Policy) CheckAddr(ip netip.Addr) error {
	if !ip.IsValid() {
		return ErrRefused
	}
	if p.AllowPrivate {
		return nil
	}
	if refused(ip) {
		return ErrRefused
	}
	return nil
}

func refused(ip netip.Addr) bool {
	// Prefix.Contains is false for any address with a zone: without this,
	// zoned addresses would be judged by no range at all.
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		return inAny(refusedV4, ip)
	}
	if v4, ok := embeddedV4(ip); ok {
		return inAny(refusedV4, v4)
	}
	return !globalUnicastV6.Contains(ip) || inAny(refusedV6, ip)
}

// embeddedV4 returns the IPv4 address that an IPv6 address stands for when
// a translator or tunnel would deliver it to that IPv4 address.
func embeddedV4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case nat64V6.Contains(ip): // 64:ff9b::a.b.c.d, RFC 6052
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFourV6.Contains(ip): // 2002:aabb:ccdd::/48, RFC 3056
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

func inAny(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkURLLookupTimeout bounds the name lookup of CheckURL, so that a slow
// DNS server cannot hang an API request; a lookup that times out is treated
// like a name that does not resolve yet.
const checkURLLookupTimeout = 5 * time.Second

// CheckURL checks a target URL at webhook create and update. It refuses a
// scheme other than https (and http when AllowHTTP), a host that is a
// refused IP address in any spelling the system resolver would accept
// (decimal 2130706433, octal 0177.0.0.1, hex 0x7f.1, short 127.1 …), and a
// name that resolves to at least one refused address. A name that does not
// resolve, or whose lookup fails, is accepted: it is checked again at every
// dial. It does not repeat the syntax rules of hookd.ValidateURL (length,
// user info, fragment); callers check both.
//
// Every error is an EINVALID *hookd.Error on the field "url", ready for the
// API; policy refusals also match errors.Is(err, ErrRefused) and scheme
// refusals errors.Is(err, ErrScheme). When ctx ends during the lookup,
// CheckURL returns ctx.Err().
func (p Policy) CheckURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return urlError("url is not a valid URL", nil)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case u.Scheme == "http":
		return urlError("url must use https:// (http:// is not allowed on this server)", ErrScheme)
	default:
		return urlError("url must be an absolute https:// URL", ErrScheme)
	}
	host := u.Hostname()
	if host == "" {
		return urlError("url must have a host", nil)
	}
	if p.AllowPrivate {
		return nil
	}
	if ip, ok := parseHostIP(host); ok {
		if p.CheckAddr(ip) != nil {
			return urlError(ErrRefused.Error(), ErrRefused)
		}
		return nil
	}
	lookupCtx, cancel := context.WithTimeout(ctx, checkURLLookupTimeout)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(lookupCtx, "ip", host)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return nil // not resolvable yet: the dial-time check still applies
	}
	for _, a := range addrs {
		if p.CheckAddr(a) != nil {
			return urlError(ErrRefused.Error(), ErrRefused)
		}
	}
	return nil
}

func (p Policy) resolver() *net.Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// checkError is both an API error and, through Unwrap, the sentinel that
// says why, so callers can use hookd.ErrorCode and errors.Is alike.
type checkError struct {
	api   *hookd.Error
	cause error
}

func (e *checkError) Error() string { return e.api.Message }

func (e *checkError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.api}
	}
	return []error{e.api, e.cause}
}

func urlError(msg string, cause error) error {
	return &checkError{api: hookd.FieldErrorf("url", "%s", msg), cause: cause}
}

// parseHostIP returns the address a URL host stands for when it is an IP
// literal: standard IPv4 and IPv6 (with or without zone), and the legacy
// IPv4 forms that inet_aton, and so getaddrinfo, accepts.
func parseHostIP(host string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true
	}
	return parseInetAton(strings.TrimSuffix(host, "."))
}

// parseInetAton parses IPv4 the way inet_aton(3) does: one to four parts
// separated by dots, each decimal, octal (leading 0) or hex (leading 0x);
// the last part fills all the remaining bytes, so "127.1" is 127.0.0.1 and
// "2130706433" is 127.0.0.1 too.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, part := range parts {
		base, digits := 10, part
		switch {
		case len(part) > 1 && (part[:2] == "0x" || part[:2] == "0X"):
			base, digits = 16, part[2:]
			if digits == "" { // inet_aton accepts a bare "0x" as 0
				digits = "0"
			}
		case len(part) > 1 && part[0] == '0':
			base, digits = 8, part[1:]
		}
		if digits == "" || digits[0] == '+' || digits[0] == '-' {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (24 - 8*i)
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}
