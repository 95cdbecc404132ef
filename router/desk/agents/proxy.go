package agents

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// proxies are the trusted reverse proxies.
type proxies []netip.Prefix

// parseProxies parses CIDRs and single addresses.
func parseProxies(list []string) (proxies, error) {
	out := make(proxies, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted proxy %q: want a CIDR (10.0.0.0/8) or an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// trusts reports whether addr is a trusted proxy.
func (ps proxies) trusts(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range ps {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// client is the client's address of a request from remote: remote, or
// when remote is a trusted proxy, the last address of X-Forwarded-For
// that is not one.
func (ps proxies) client(remote netip.Addr, h http.Header) netip.Addr {
	remote = remote.Unmap()
	if !ps.trusts(remote) {
		return remote
	}
	hops := strings.Split(strings.Join(h.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return remote // a hop we cannot read: trust nothing before it
		}
		if a = a.Unmap(); !ps.trusts(a) {
			return a
		}
		remote = a
	}
	return remote
}

// remote is the address r came from.
func (s *Sessions) remote(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("the request's remote address %q: %w", r.RemoteAddr, err)
	}
	return ap.Addr().Unmap(), nil
}

// ClientAddr is the address of r's client, for the audit and for
// throttling: its remote address, or the one a trusted proxy forwarded.
// It is empty when r has no readable remote address.
func (s *Sessions) ClientAddr(r *http.Request) string {
	addr, err := s.remote(r)
	if err != nil {
		return ""
	}
	return s.proxies.client(addr, r.Header).String()
}

// proxyUser returns the agent name a trusted proxy sent in the user
// header of r. From an untrusted address the header is ignored.
func (s *Sessions) proxyUser(r *http.Request) (string, bool) {
	if s.opts.UserHeader == "" || len(s.proxies) == 0 {
		return "", false
	}
	addr, err := s.remote(r)
	if err != nil || !s.proxies.trusts(addr) {
		return "", false
	}
	name := strings.TrimSpace(r.Header.Get(s.opts.UserHeader))
	return name, name != ""
}
