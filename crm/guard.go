package crm

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// DefaultTimeout bounds one HTTP request of a delivery, from dial to the end
// of reading the (limited) response body.
const DefaultTimeout = 15 * time.Second

// MaxRedirects is how many redirects a delivery follows before failing
// permanently.
const MaxRedirects = 3

// ErrForbiddenAddress is wrapped by the error of a connection the guard
// refused: the destination resolved to a loopback, private, link-local
// (including the 169.254.169.254 metadata service), CGNAT, multicast,
// unspecified or otherwise reserved address, and private targets are not
// allowed (POSTCALL_ALLOW_PRIVATE_TARGETS unset). Deliveries fail with it
// permanently.
var ErrForbiddenAddress = errors.New("destination address is loopback, private, link-local or reserved")

// errRedirect is wrapped by a refused redirect; deliveries fail with it
// permanently.
var errRedirect = errors.New("redirect refused")

// forbiddenPrefixes are the IPv4 and IPv6 ranges an integration may not
// reach, beyond what netip's IsLoopback/IsPrivate/... predicates cover. They
// are checked on the unmapped address, so ::ffff:10.0.0.1 is 10.0.0.1.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),  // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, incl. broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// embeddedIPv4 are IPv6 ranges that carry an IPv4 address in their low 32
// bits (NAT64); the embedded address is checked too, so that 64:ff9b::a00:1
// cannot reach 10.0.0.1 through a NAT64 gateway.
var embeddedIPv4 = []netip.Prefix{
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// AddressAllowed reports whether an integration may connect to addr when
// private targets are not allowed. It is the check NewHTTPClient's dialer
// runs on every resolved address just before connecting.
func AddressAllowed(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() ||
		addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() {
		return false
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(addr) {
			return false
		}
	}
	if addr.Is6() {
		for _, p := range embeddedIPv4 {
			if p.Contains(addr) {
				b := addr.As16()
				v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
				return AddressAllowed(v4)
			}
		}
	}
	return true
}

// guardControl is the net.Dialer Control hook: it runs after DNS resolution,
// on the exact address about to be connected to and before connect(2), so a
// DNS answer that changes between a check and the connection (rebinding)
// cannot slip through, and a refused address is never sent a single packet.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q on %s", ErrForbiddenAddress, address, network)
	}
	if !AddressAllowed(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
	}
	return nil
}

// newDialer is the dialer of NewHTTPClient; guarded unless allowPrivate.
func newDialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = guardControl
	}
	return d
}

// NewHTTPClient returns the client deliveries use. Unless allowPrivate (set
// it from POSTCALL_ALLOW_PRIVATE_TARGETS=1, for tests only), its dialer
// refuses loopback, private (RFC 1918, fc00::/7), link-local (169.254/16,
// fe80::/10, so the cloud metadata service too), CGNAT (100.64/10),
// unspecified, multicast and reserved addresses, IPv4-mapped IPv6 forms
// included, checked on the resolved address at connect time.
//
// Environment proxies are ignored: through a proxy the dialer would only see
// the proxy's address. Redirects are followed at most MaxRedirects times,
// only to the same host and never from https to http, because custom headers
// (which may carry credentials) are re-sent on redirect. The whole exchange
// is bounded by DefaultTimeout.
func NewHTTPClient(allowPrivate bool) *http.Client {
	return newHTTPClient(newDialer(allowPrivate))
}

// newHTTPClient builds NewHTTPClient's client around a dialer; tests wrap
// the guarded dialer with a tripwire so that a broken guard fails the test
// instead of reaching a private network.
func newHTTPClient(dialer *net.Dialer) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       DefaultTimeout,
		CheckRedirect: checkRedirect,
	}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return fmt.Errorf("%w: more than %d redirects", errRedirect, MaxRedirects)
	}
	first := via[0].URL
	if req.URL.Host != first.Host {
		return fmt.Errorf("%w: to another host", errRedirect)
	}
	if first.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("%w: from https to http", errRedirect)
	}
	return nil
}
