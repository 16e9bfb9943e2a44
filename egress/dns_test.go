package egress

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeDNS is a tiny authoritative DNS server on 127.0.0.1 UDP that answers
// A and AAAA questions from a table the test can change between queries,
// which is all a DNS rebinding attack needs. Names not in the table get
// NXDOMAIN; names mapped to nil get SERVFAIL.
type fakeDNS struct {
	conn    net.PacketConn
	queries atomic.Int64

	mu      sync.Mutex
	answers map[string][]netip.Addr // lower-case name without the final dot
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDNS{conn: conn, answers: map[string][]netip.Addr{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := d.answer(buf[:n]); resp != nil {
				conn.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return d
}

// set makes name resolve to addrs from the next query on.
func (d *fakeDNS) set(name string, addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if addrs == nil {
		d.answers[name] = nil
		return
	}
	list := []netip.Addr{}
	for _, a := range addrs {
		list = append(list, netip.MustParseAddr(a))
	}
	d.answers[name] = list
}

// resolver returns a pure-Go resolver that sends every query to d, whatever
// /etc/resolv.conf says. (/etc/hosts is still read first, as in production.)
func (d *fakeDNS) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
)

// answer builds the response to one query, or nil to drop a malformed one.
func (d *fakeDNS) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	d.queries.Add(1)
	// The question: length-prefixed labels, a zero byte, type, class.
	var labels []string
	i := 12
	for {
		if i >= len(q) {
			return nil
		}
		l := int(q[i])
		if l == 0 {
			i++
			break
		}
		if l&0xc0 != 0 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i : i+2])
	question := q[12 : i+4]

	d.mu.Lock()
	addrs, known := d.answers[strings.ToLower(strings.Join(labels, "."))]
	d.mu.Unlock()

	rcode := uint16(0)
	switch {
	case !known:
		rcode = 3 // NXDOMAIN
	case addrs == nil:
		rcode = 2 // SERVFAIL
	}
	var records [][]byte
	for _, a := range addrs {
		switch {
		case qtype == dnsTypeA && a.Is4():
			records = append(records, a.AsSlice())
		case qtype == dnsTypeAAAA && a.Is6():
			records = append(records, a.AsSlice())
		}
	}

	resp := make([]byte, 12, 512)
	copy(resp[0:2], q[0:2])                           // id
	flags := 0x8000 | 0x0400 | 0x0080 | rcode         // response, authoritative, recursion available
	flags |= binary.BigEndian.Uint16(q[2:4]) & 0x0100 // echo "recursion desired"
	binary.BigEndian.PutUint16(resp[2:4], flags)
	binary.BigEndian.PutUint16(resp[4:6], 1)
	binary.BigEndian.PutUint16(resp[6:8], uint16(len(records)))
	resp = append(resp, question...)
	for _, rdata := range records {
		resp = append(resp, 0xc0, 12) // the name: a pointer to the question's
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // class IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp
}

// TestFakeDNS checks the test double itself, so that the rebinding tests
// cannot pass because the fake resolver silently fails.
func TestFakeDNS(t *testing.T) {
	d := newFakeDNS(t)
	d.set("two.test", "192.0.2.1", "2001:db8::1")
	r := d.resolver()
	got, err := r.LookupNetIP(context.Background(), "ip", "two.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("two.test = %v, want 2 addresses", got)
	}
	_, err = r.LookupNetIP(context.Background(), "ip", "absent.test")
	if dnsErr, ok := err.(*net.DNSError); !ok || !dnsErr.IsNotFound {
		t.Errorf("absent.test: err = %v, want a not-found *net.DNSError", err)
	}
}
