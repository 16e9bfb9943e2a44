package egress

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/hookd-dev/hookd"
)

func TestPolicy_CheckAddr(t *testing.T) {
	tests := []struct {
		addr    string
		refused bool
	}{
		// IPv4, refused.
		{"127.0.0.1", true},
		{"127.255.255.254", true},
		{"10.0.0.1", true},
		{"10.255.255.255", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"169.254.0.1", true},
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"100.100.100.200", true}, // Alibaba metadata, inside CGNAT
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"255.255.255.255", true},
		{"240.0.0.1", true},
		{"168.63.129.16", true}, // Azure wire server
		{"192.0.0.170", true},
		{"198.18.0.1", true},
		{"192.0.2.1", true},
		// IPv4, allowed: public, and the neighbours of refused ranges.
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"172.15.255.255", false},
		{"172.32.0.0", false},
		{"192.167.255.255", false},
		{"192.169.0.0", false},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"169.253.255.255", false},
		{"168.63.129.17", false},
		{"223.255.255.255", false},
		// IPv6, refused.
		{"::1", true},
		{"::", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true}, // a zone must not hide the range
		{"febf:ffff::1", true},
		{"fec0::1", true},
		{"fc00::1", true},
		{"fd12:3456:789a::1", true},
		{"fd00:ec2::254", true}, // AWS metadata over IPv6
		{"ff02::1", true},
		{"ff0e::101", true},
		{"100::1", true},
		{"2001:db8::1", true},
		{"5f00::1", true},
		{"4000::1", true}, // outside 2000::/3: not allocated for unicast
		// IPv4 inside IPv6.
		{"::ffff:127.0.0.1", true},
		{"::ffff:7f00:1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::ffff:8.8.8.8", false},
		{"::127.0.0.1", true}, // IPv4-compatible, deprecated: refused whatever it embeds
		{"::8.8.8.8", true},
		{"::ffff:0:7f00:1", true}, // IPv4-translated
		{"64:ff9b::127.0.0.1", true},
		{"64:ff9b::a9fe:a9fe", true}, // NAT64 of 169.254.169.254
		{"64:ff9b::10.1.2.3", true},
		{"64:ff9b::8.8.8.8", false},
		{"64:ff9b:1::1", true},       // local-use NAT64
		{"64:ff9b:1::808:808", true}, // even with a public address inside
		{"2002:7f00:1::1", true},     // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::", true},   // 6to4 of 169.254.169.254
		{"2002:c0a8:101::1", true},   // 6to4 of 192.168.1.1
		{"2002:808:808::1", false},   // 6to4 of 8.8.8.8
		{"2001::1", true},            // Teredo: refused outright
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", true},
		// IPv6, allowed.
		{"2606:4700::1111", false},
		{"2001:4860:4860::8888", false},
		{"2a00:1450:4001::1", false},
		{"2001:200::1", false}, // first block after the IETF /23
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)

			err := Policy{}.CheckAddr(ip)
			if tt.refused && err != ErrRefused {
				t.Errorf("CheckAddr = %v, want ErrRefused", err)
			}
			if !tt.refused && err != nil {
				t.Errorf("CheckAddr = %v, want nil", err)
			}
			if err := (Policy{AllowPrivate: true}).CheckAddr(ip); err != nil {
				t.Errorf("with AllowPrivate: CheckAddr = %v, want nil", err)
			}
		})
	}
	t.Run("ErrRefused/InvalidAddr", func(t *testing.T) {
		if err := (Policy{AllowPrivate: true}).CheckAddr(netip.Addr{}); err != ErrRefused {
			t.Errorf("CheckAddr(zero Addr) = %v, want ErrRefused even with AllowPrivate", err)
		}
	})
}

func TestParseInetAton(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" when it is not an address
	}{
		{"127.0.0.1", "127.0.0.1"},
		{"2130706433", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7F.0.0.0x1", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"10.1", "10.0.0.1"},
		{"192.168.257", "192.168.1.1"},
		{"0x7f000001", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0", "0.0.0.0"},
		{"134744072", "8.8.8.8"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"256.0.0.1", ""},
		{"1.2.3.256", ""},
		{"1.2.65536", ""},
		{"1.2.3.4.5", ""},
		{"08.0.0.1", ""}, // 8 is not an octal digit
		{"1..1", ""},
		{"", ""},
		{"cafe.be", ""},
		{"1e100.net", ""},
		{"+1.2.3.4", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := parseInetAton(tt.in)
			switch {
			case tt.want == "" && ok:
				t.Errorf("parseInetAton(%q) = %v, want not an address", tt.in, got)
			case tt.want != "" && (!ok || got != netip.MustParseAddr(tt.want)):
				t.Errorf("parseInetAton(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestPolicy_CheckURL(t *testing.T) {
	dns := newFakeDNS(t)
	dns.set("public.test", "93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
	dns.set("internal.test", "10.0.0.5")
	dns.set("mixed.test", "93.184.215.14", "169.254.169.254") // one bad address is enough
	dns.set("v6loop.test", "::1")
	dns.set("mapped.test", "::ffff:192.168.0.1")
	dns.set("broken.test") // SERVFAIL
	safe := Policy{Resolver: dns.resolver()}

	tests := []struct {
		name   string
		policy Policy
		url    string
		want   error // nil, ErrRefused, ErrScheme, or errInvalid for other EINVALID errors
	}{
		{"OK/PublicIPv4", safe, "https://8.8.8.8/hook", nil},
		{"OK/PublicIPv6", safe, "https://[2606:4700::1111]:8443/hook", nil},
		{"OK/PublicDecimal", safe, "https://134744072/hook", nil},
		{"OK/ResolvesToPublic", safe, "https://public.test/hook?token=x", nil},
		{"OK/DoesNotResolve", safe, "https://nonexistent.invalid/hook", nil},
		{"OK/LookupFails", safe, "https://broken.test/hook", nil},
		{"OK/HTTPWhenAllowed", Policy{AllowHTTP: true, Resolver: safe.Resolver}, "http://public.test/", nil},
		{"OK/PrivateWhenAllowed", Policy{AllowPrivate: true}, "https://127.0.0.1/", nil},
		{"ErrRefused/Loopback", safe, "https://127.0.0.1/hook", ErrRefused},
		{"ErrRefused/LoopbackWithPort", safe, "https://127.0.0.1:8443/hook", ErrRefused},
		{"ErrRefused/Metadata", safe, "https://169.254.169.254/latest/meta-data/", ErrRefused},
		{"ErrRefused/IPv6Loopback", safe, "https://[::1]/", ErrRefused},
		{"ErrRefused/IPv4Mapped", safe, "https://[::ffff:127.0.0.1]/", ErrRefused},
		{"ErrRefused/IPv6Zone", safe, "https://[fe80::1%25eth0]/", ErrRefused},
		{"ErrRefused/NAT64", safe, "https://[64:ff9b::7f00:1]/", ErrRefused},
		{"ErrRefused/Decimal", safe, "https://2130706433/", ErrRefused},
		{"ErrRefused/Octal", safe, "https://0177.0.0.1/", ErrRefused},
		{"ErrRefused/Hex", safe, "https://0x7f.1/", ErrRefused},
		{"ErrRefused/HexWhole", safe, "https://0x7f000001/", ErrRefused},
		{"ErrRefused/Short", safe, "https://127.1/", ErrRefused},
		{"ErrRefused/ShortPrivate", safe, "https://10.1/", ErrRefused},
		{"ErrRefused/TrailingDot", safe, "https://127.0.0.1./", ErrRefused},
		{"ErrRefused/ResolvesToPrivate", safe, "https://internal.test/", ErrRefused},
		{"ErrRefused/ResolvesToOneRefused", safe, "https://mixed.test/", ErrRefused},
		{"ErrRefused/ResolvesToIPv6Loopback", safe, "https://v6loop.test/", ErrRefused},
		{"ErrRefused/ResolvesToMappedPrivate", safe, "https://mapped.test/", ErrRefused},
		{"ErrRefused/LocalhostSystemResolver", Policy{}, "https://localhost/", ErrRefused},
		{"ErrRefused/LocalhostUpperCase", Policy{}, "https://LOCALHOST:9000/", ErrRefused},
		{"ErrScheme/HTTP", safe, "http://8.8.8.8/", ErrScheme},
		{"ErrScheme/HTTPEvenIfPrivateAllowed", Policy{AllowPrivate: true}, "http://127.0.0.1/", ErrScheme},
		{"ErrScheme/FTP", safe, "ftp://8.8.8.8/", ErrScheme},
		{"ErrScheme/Relative", safe, "/hook", ErrScheme},
		{"ErrInvalid/NoHost", safe, "https:///hook", errInvalid},
		{"ErrInvalid/Unparsable", safe, "https://[::1/", errInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckURL(context.Background(), tt.url)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v, want nil", tt.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckURL(%q) = nil, want %v", tt.url, tt.want)
			}
			if tt.want != errInvalid && !errors.Is(err, tt.want) {
				t.Errorf("CheckURL(%q) = %v, want errors.Is %v", tt.url, err, tt.want)
			}
			// Every refusal is ready for the API as a 400 on the url field.
			if code, field := hookd.ErrorCode(err), hookd.ErrorField(err); code != hookd.EINVALID || field != "url" {
				t.Errorf("CheckURL(%q): code %q field %q, want %q on url", tt.url, code, field, hookd.EINVALID)
			}
		})
	}

	t.Run("ContextCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := safe.CheckURL(ctx, "https://public.test/"); !errors.Is(err, context.Canceled) {
			t.Errorf("CheckURL = %v, want context.Canceled", err)
		}
	})
	t.Run("ErrRefused/SameTextForEveryRange", func(t *testing.T) {
		a := safe.CheckURL(context.Background(), "https://127.0.0.1/")
		b := safe.CheckURL(context.Background(), "https://internal.test/")
		if a == nil || b == nil || a.Error() != b.Error() || hookd.ErrorMessage(a) != ErrRefused.Error() {
			t.Errorf("refusals read %q and %q; want both %q", a, b, ErrRefused)
		}
	})
}

// errInvalid marks CheckURL cases that must fail with EINVALID on the url
// field without a more specific sentinel.
var errInvalid = errors.New("any EINVALID url error")
