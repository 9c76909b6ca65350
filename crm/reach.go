package crm

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// PrivateTargetWarning says why deliveries to t can never succeed while
// private targets are not allowed (POSTCALL_ALLOW_PRIVATE_TARGETS unset):
// its host is, or resolves only to, addresses the delivery guard refuses
// (loopback, private, link-local, metadata...). It returns "" when the host
// is public or cannot be resolved now (DNS may answer differently when the
// delivery runs, and the guard checks again then). agents apply prints it
// as a warning, with the setting that allows such targets: the plan is
// valid, and right on a worker that allows private targets.
func PrivateTargetWarning(ctx context.Context, t Target, resolver *net.Resolver) string {
	u := targetURL(t)
	if u == nil {
		return ""
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		addrs = []netip.Addr{netip.IPv6Loopback()}
	} else if addrs, err = resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return ""
	}
	if len(addrs) == 0 {
		return ""
	}
	for _, a := range addrs {
		if AddressAllowed(a.Unmap()) {
			return ""
		}
	}
	return fmt.Sprintf("integrations[%s]: %s resolves only to addresses deliveries refuse (loopback, private, link-local or reserved)",
		t.Name(), hostOf(u))
}

// targetURL is where t sends.
func targetURL(t Target) *url.URL {
	switch t := t.(type) {
	case *webhookTarget:
		return t.url
	case *hubspotTarget:
		return t.base
	case *ghlTarget:
		return t.base
	case *pipedriveTarget:
		return t.base
	}
	return nil
}
