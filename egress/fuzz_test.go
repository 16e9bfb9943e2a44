package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookd-dev/hookd"
)

// The fuzz targets check the network policy against oracles written here,
// independently of policy.go: SPEC §6's ranges as prefixes, the standard
// library's own classification, and an inet_aton written the way the C
// library writes it. Seeds are in testdata/fuzz/<FuzzName>/; run one with
//
//	go test -run '^$' -fuzz FuzzClassify -fuzztime 30s ./egress

// mustRefuseV4 and mustRefuseV6 are the ranges SPEC §6 names (loopback,
// private, link-local with cloud metadata, carrier-grade NAT, unique-local,
// multicast, unspecified) and the broadcast and reserved space next to them.
// policy.go refuses more than this (documentation, benchmarking, …); it
// must never refuse less.
var (
	mustRefuseV4 = prefixes(
		"0.0.0.0/8",                                     // unspecified, "this network"
		"127.0.0.0/8",                                   // loopback
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // private
		"169.254.0.0/16",   // link-local, 169.254.169.254 metadata
		"100.64.0.0/10",    // carrier-grade NAT
		"224.0.0.0/4",      // multicast
		"240.0.0.0/4",      // reserved, 255.255.255.255 broadcast
		"168.63.129.16/32", // Azure wire server
	)
	mustRefuseV6 = prefixes(
		"::/128",    // unspecified
		"::1/128",   // loopback
		"fe80::/10", // link-local
		"fec0::/10", // site-local, the old private range
		"fc00::/7",  // unique-local, AWS metadata fd00:ec2::254
		"ff00::/8",  // multicast
	)
)

// v4Spellings are the IPv6 forms that reach an IPv4 address: the bytes of
// the IPv4 address go at offset, after the prefix's bytes.
var v4Spellings = []struct {
	name   string
	prefix netip.Prefix
	offset int
}{
	{"mapped", netip.MustParsePrefix("::ffff:0:0/96"), 12},
	{"compatible", netip.MustParsePrefix("::/96"), 12},
	{"NAT64", netip.MustParsePrefix("64:ff9b::/96"), 12},
	{"6to4", netip.MustParsePrefix("2002::/16"), 2},
}

// mustRefuse is the oracle: whether SPEC §6 forbids ip, in any spelling.
func mustRefuse(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if ip.Is4() {
		return inAny(mustRefuseV4, ip)
	}
	if inAny(mustRefuseV6, ip) {
		return true
	}
	b := ip.As16()
	for _, sp := range v4Spellings {
		if sp.prefix.Contains(ip) && inAny(mustRefuseV4, netip.AddrFrom4([4]byte(b[sp.offset:sp.offset+4]))) {
			return true
		}
	}
	return false
}

// stdlibPublic is the standard library's view of a globally reachable
// unicast address, a second opinion that shares no code with policy.go.
func stdlibPublic(ip netip.Addr) bool {
	ip = ip.WithZone("").Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() &&
		!ip.IsLinkLocalUnicast() && !ip.IsMulticast() && !ip.IsUnspecified()
}

// spell writes v4 in the IPv6 form sp, filling the bytes after it (6to4's
// subnet and interface id) from rest.
func spell(sp int, v4 netip.Addr, rest []byte) netip.Addr {
	s := v4Spellings[sp]
	b := s.prefix.Addr().As16()
	a4 := v4.As4()
	copy(b[s.offset:], a4[:])
	if end := s.offset + 4; end < 16 {
		copy(b[end:], rest)
	}
	return netip.AddrFrom16(b)
}

// FuzzClassify feeds CheckAddr every address the fuzzer can make: 4 bytes
// are an IPv4 address, 16 bytes an IPv6 one, anything else is parsed as
// text (zones included).
func FuzzClassify(f *testing.F) {
	safe, open := Policy{}, Policy{AllowPrivate: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ip netip.Addr
		switch len(b) {
		case 4:
			ip = netip.AddrFrom4([4]byte(b))
		case 16:
			ip = netip.AddrFrom16([16]byte(b))
		default:
			var err error
			if ip, err = netip.ParseAddr(string(b)); err != nil {
				if safe.CheckAddr(netip.Addr{}) != ErrRefused || open.CheckAddr(netip.Addr{}) != ErrRefused {
					t.Fatal("the zero Addr must always be refused")
				}
				return
			}
		}
		err := safe.CheckAddr(ip)
		if err != nil && err != ErrRefused {
			t.Fatalf("CheckAddr(%s) = %v, want nil or ErrRefused", ip, err)
		}
		allowed := err == nil
		if allowed && mustRefuse(ip) {
			t.Fatalf("CheckAddr allows %s, which SPEC §6 forbids", ip)
		}
		if allowed && !stdlibPublic(ip) {
			t.Fatalf("CheckAddr allows %s, which the standard library says is not public unicast", ip)
		}
		if open.CheckAddr(ip) != nil {
			t.Fatalf("with AllowPrivate, CheckAddr(%s) refused", ip)
		}
		if ip.Is6() && ip.Zone() == "" {
			if zoned := ip.WithZone("eth0"); (safe.CheckAddr(zoned) == nil) != allowed {
				t.Fatalf("a zone changed the verdict on %s", ip)
			}
		}

		// Every IPv6 spelling of an IPv4 address gets the IPv4 verdict; the
		// deprecated compatible form is refused whatever it holds.
		v4 := ip.Unmap()
		if !v4.Is4() {
			v4 = netip.AddrFrom4([4]byte(ip.AsSlice()[:4]))
		}
		v4Allowed := safe.CheckAddr(v4) == nil
		for i, sp := range v4Spellings {
			s := spell(i, v4, b)
			got := safe.CheckAddr(s) == nil
			switch {
			case got && !v4Allowed:
				t.Fatalf("%s %s of refused %s is allowed", sp.name, s, v4)
			case got && sp.name == "compatible":
				t.Fatalf("IPv4-compatible %s is allowed", s)
			case !got && v4Allowed && sp.name != "compatible":
				t.Fatalf("%s %s of allowed %s is refused", sp.name, s, v4)
			}
		}
	})
}

// noDNS is a resolver that fails every query at once, so that the fuzz
// targets never wait on the network; names in /etc/hosts still resolve.
func noDNS() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("no DNS while fuzzing")
		},
	}
}

// FuzzCheckURL checks the create-time URL checks (hookd.ValidateURL, then
// Policy.CheckURL) on arbitrary strings, and the dial-time check on those
// whose host is an IP literal.
func FuzzCheckURL(f *testing.F) {
	safe := Policy{Resolver: noDNS()}
	open := Policy{AllowPrivate: true, AllowHTTP: true, Resolver: safe.Resolver}
	client := NewClient(Options{Policy: safe, Timeout: 200 * time.Millisecond})
	f.Cleanup(client.CloseIdleConnections)

	f.Fuzz(func(t *testing.T, raw string) {
		ctx := context.Background()
		err := safe.CheckURL(ctx, raw)
		if err != nil && (hookd.ErrorCode(err) != hookd.EINVALID || hookd.ErrorField(err) != "url") {
			t.Fatalf("CheckURL(%q) = %v: not an invalid_argument on url", raw, err)
		}
		valid := hookd.ValidateURL(raw, false)
		if valid != nil && (hookd.ErrorCode(valid) != hookd.EINVALID || hookd.ErrorField(valid) != "url") {
			t.Fatalf("ValidateURL(%q) = %v: not an invalid_argument on url", raw, valid)
		}
		// The two checks agree on syntax: past ValidateURL, the policy has
		// only one reason left to refuse.
		if valid == nil && err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("ValidateURL accepts %q but CheckURL says %v", raw, err)
		}
		if hookd.ValidateURL(raw, true) == nil {
			if err := open.CheckURL(ctx, raw); err != nil {
				t.Fatalf("with AllowPrivate and AllowHTTP, CheckURL(%q) = %v", raw, err)
			}
		}

		u, perr := url.Parse(raw)
		if perr != nil {
			if err == nil {
				t.Fatalf("CheckURL accepts %q, which does not parse: %v", raw, perr)
			}
			return
		}
		host := u.Hostname()
		ip, literal := netip.ParseAddr(host)
		isIP := literal == nil
		if !isIP {
			ip, isIP = atonOracle(strings.TrimSuffix(host, "."))
		}
		if !isIP || !(mustRefuse(ip) || !stdlibPublic(ip)) {
			return
		}
		if err == nil {
			t.Fatalf("CheckURL accepts %q, whose host %q is %s", raw, host, ip)
		}
		if literal != nil || valid != nil || u.Port() != "" {
			return
		}
		// The dial-time check: the connection is refused before it is made.
		// Without it these would be connection refused (nothing listens on
		// 127.0.0.1:443) or a timeout (10.0.0.0/8 leads nowhere here).
		res := client.Post(ctx, raw, nil, nil)
		if !errors.Is(res.Err, ErrRefused) || errors.Is(res.Err, syscall.ECONNREFUSED) || isTimeout(res.Err) {
			t.Fatalf("Post(%q) = %v, want ErrRefused at dial time", raw, res.Err)
		}
	})
}

// atonOracle parses IPv4 as the C library's inet_aton(3) does, written
// after its source (a loop over characters) rather than after policy.go:
// one to four numbers separated by dots, each decimal, octal with a leading
// 0 or hex with a leading 0x; the last fills the bytes left.
func atonOracle(s string) (netip.Addr, bool) {
	var parts []uint64
	i := 0
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return netip.Addr{}, false
		}
		val, base := uint64(0), uint64(10)
		if s[i] == '0' {
			base, i = 8, i+1
			if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
				base, i = 16, i+1
			}
		}
	digits:
		for ; i < len(s); i++ {
			c, d := s[i], uint64(0)
			switch {
			case c >= '0' && c <= '9':
				if base == 8 && c >= '8' {
					return netip.Addr{}, false
				}
				d = uint64(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				d = uint64(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				break digits
			}
			if val = val*base + d; val > 0xffffffff {
				return netip.Addr{}, false
			}
		}
		if i < len(s) && s[i] == '.' {
			if len(parts) == 3 {
				return netip.Addr{}, false
			}
			parts, i = append(parts, val), i+1
			continue
		}
		if i != len(s) {
			return netip.Addr{}, false
		}
		parts = append(parts, val)
		break
	}
	// a, a.b (b: 24 bits), a.b.c (c: 16 bits), a.b.c.d (d: 8 bits)
	last := parts[len(parts)-1]
	lead := parts[:len(parts)-1]
	if last >= 1<<(32-8*len(lead)) {
		return netip.Addr{}, false
	}
	n := last
	for k, p := range lead {
		if p > 0xff {
			return netip.Addr{}, false
		}
		n |= p << (24 - 8*k)
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// The oracle must itself be right, or the fuzzing proves nothing.
func TestAtonOracle(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "2130706433": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"0x7f.1": "127.0.0.1", "127.1": "127.0.0.1", "10.1": "10.0.0.1", "0x": "0.0.0.0",
		"192.168.257": "192.168.1.1", "0X7F000001": "127.0.0.1", "4294967295": "255.255.255.255",
		"4294967296": "", "256.0.0.1": "", "1.2.3.4.5": "", "08": "", "1..1": "", "": "",
		"+1": "", "1.": "", ".1": "", "0xg": "", "1.2.65536": "",
	} {
		got, ok := atonOracle(in)
		if (want == "") != !ok || ok && got.String() != want {
			t.Errorf("atonOracle(%q) = %v %v, want %q", in, got, ok, want)
		}
	}
}
