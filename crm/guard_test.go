package crm

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAddressAllowed(t *testing.T) {
	t.Parallel()
	forbidden := []string{
		"127.0.0.1", "127.255.255.254", // loopback
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
		"169.254.169.254", "169.254.0.1", // link-local, cloud metadata
		"100.64.0.1", "100.127.255.254", // CGNAT
		"0.0.0.0", "0.1.2.3", // unspecified, "this network"
		"224.0.0.1", "239.255.255.250", // multicast
		"255.255.255.255", "240.0.0.1", // broadcast, reserved
		"198.18.0.1", "192.0.0.8", "192.0.2.1", // benchmarking, IETF, TEST-NET
		"::1", "::", // loopback, unspecified
		"fe80::1", "fe80::a9fe:a9fe", // link-local
		"fc00::1", "fd00:ec2::254", // ULA, incl. AWS's IPv6 metadata address
		"ff02::1", "ff05::2", // multicast
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:100.64.0.1", // IPv4-mapped
		"::127.0.0.1",                       // IPv4-compatible
		"64:ff9b::a00:1", "64:ff9b::7f00:1", // NAT64 of 10.0.0.1 and 127.0.0.1
		"2001:db8::1", // documentation
	}
	for _, s := range forbidden {
		require.False(t, AddressAllowed(netip.MustParseAddr(s)), s)
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0", "172.32.0.1", "169.253.255.255",
		"2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808",
	}
	for _, s := range allowed {
		require.True(t, AddressAllowed(netip.MustParseAddr(s)), s)
	}
	require.False(t, AddressAllowed(netip.Addr{}))
}

// TestDialerControl calls the guarded dialer's Control hook directly, as
// net.Dialer does after resolution and before connect: no socket is ever
// connected, so non-loopback addresses are safe to name here.
func TestDialerControl(t *testing.T) {
	t.Parallel()
	d := newDialer(false)
	require.NotNil(t, d.Control)
	for _, addr := range []string{"127.0.0.1:443", "10.0.0.1:443", "169.254.169.254:80", "[::1]:80", "[::ffff:10.0.0.1]:443", "[fe80::1%eth0]:80", "garbage"} {
		err := d.Control("tcp", addr, nil)
		require.ErrorIs(t, err, ErrForbiddenAddress, addr)
	}
	require.NoError(t, d.Control("tcp4", "93.184.216.34:443", nil))
	require.NoError(t, d.Control("tcp6", "[2606:4700:4700::1111]:443", nil))
	require.Nil(t, newDialer(true).Control, "allowPrivate lifts the check")
}

// errTripwire is what the test tripwire returns if the guard ever lets a
// non-loopback address through: the connection is stopped there instead of
// reaching a real network.
var errTripwire = errors.New("test tripwire: guard allowed a non-loopback address")

// trippedClient is NewHTTPClient(false) with a tripwire after the guard:
// only loopback addresses could ever be connected to, even if the guard
// were broken.
func trippedClient() *http.Client {
	d := newDialer(false)
	guard := d.Control
	d.Control = func(network, address string, c syscall.RawConn) error {
		if err := guard(network, address, c); err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			return errTripwire
		}
		return nil
	}
	return newHTTPClient(d)
}

func TestGuardRefusesPrivateTargets(t *testing.T) {
	t.Parallel()
	srv, hits := statusServer(t, canned{status: 200})
	// Cleanups run after the parallel subtests finish.
	t.Cleanup(func() { require.Zero(t, hits.Load(), "nothing reached the loopback server") })
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name   string
		url    string
		client *http.Client
	}{
		// Loopback targets go through the real NewHTTPClient: connecting
		// there is harmless, and the live server proves nothing arrived.
		{"127.0.0.1 with a live server", srv.URL, NewHTTPClient(false)},
		{"localhost resolves to loopback", fmt.Sprintf("http://localhost:%d/", port), NewHTTPClient(false)},
		{"[::1]", fmt.Sprintf("http://[::1]:%d/", port), NewHTTPClient(false)},
		{"IPv4-mapped loopback", fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port), NewHTTPClient(false)},
		// Non-loopback targets go through the tripwired client, so a broken
		// guard fails the test without a packet leaving the machine.
		{"10.0.0.1", "http://10.0.0.1/hook", trippedClient()},
		{"169.254.169.254 metadata", "http://169.254.169.254/latest/meta-data/", trippedClient()},
		{"CGNAT", "https://100.64.0.1/hook", trippedClient()},
		{"IPv4-mapped private", "http://[::ffff:10.0.0.1]/hook", trippedClient()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &Deliverer{HTTPClient: tt.client, Timeout: 5 * time.Second}
			tg, err := Parse(integration(TypeWebhook, map[string]any{"url": tt.url, "secret": testWebhookSecret}))
			require.NoError(t, err)
			ctx, cancel := contextWithTimeout(t, 10*time.Second)
			defer cancel()

			a := d.Deliver(ctx, tg, sampleResult(), "msg_guard")

			require.Equal(t, OutcomePermanent, a.Outcome, "err: %v", a.Err)
			require.ErrorIs(t, a.Err, ErrForbiddenAddress)
			require.NotErrorIs(t, a.Err, errTripwire)
			require.Zero(t, a.StatusCode)
		})
	}
}

func TestAllowPrivateReachesLoopback(t *testing.T) {
	t.Parallel()
	srv, hits := statusServer(t, canned{status: 200})
	d := &Deliverer{HTTPClient: NewHTTPClient(true)}
	tg, err := Parse(integration(TypeWebhook, map[string]any{"url": srv.URL, "secret": testWebhookSecret}))
	require.NoError(t, err)
	ctx, cancel := contextWithTimeout(t, 10*time.Second)
	defer cancel()

	a := d.Deliver(ctx, tg, sampleResult(), "msg_allowed")

	require.Equal(t, OutcomeDelivered, a.Outcome, "err: %v", a.Err)
	require.Equal(t, int64(1), hits.Load())
}

func TestClientSettings(t *testing.T) {
	t.Parallel()
	c := NewHTTPClient(false)
	require.Equal(t, DefaultTimeout, c.Timeout)
	tr := c.Transport.(*http.Transport)
	require.Nil(t, tr.Proxy, "a proxy would hide the destination from the dial guard")
	require.NotNil(t, c.CheckRedirect)
}
