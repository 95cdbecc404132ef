package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Desk is the agents' web desk: `ticketrouter desk` serves it, and so
// does `run` when Listen is set.
type Desk struct {
	// Listen is host:port; "" or "off": no desk.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are a PEM certificate chain and its key; without
	// them the desk speaks plain HTTP, which is only for loopback or
	// behind a proxy (TrustedProxies).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Agents is the agents file (ticketrouter agent add|passwd|disable).
	Agents string `yaml:"agents"`
	// TrustedProxies are the addresses (CIDRs or single IPs) of
	// authenticating reverse proxies: only from those is UserHeader
	// believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// UserHeader names the agent when the request comes from a trusted
	// proxy (X-Forwarded-User).
	UserHeader string `yaml:"user_header"`
	// SessionIdle ends a session unused for this long; 30m.
	SessionIdle time.Duration `yaml:"session_idle"`
	// SLAAmber and SLARed are the ages of a queue's oldest waiting ticket
	// past which the board shows it amber and red; 1h and 4h.
	SLAAmber time.Duration `yaml:"sla_amber"`
	SLARed   time.Duration `yaml:"sla_red"`
	// EscalationQueue is the supervisors' queue; escalated.
	EscalationQueue string `yaml:"escalation_queue"`
}

// On reports whether the desk is to be served.
func (d Desk) On() bool { return d.Listen != "" && d.Listen != "off" }

// WithDefaults fills in the defaults.
func (d Desk) WithDefaults() Desk {
	if d.SessionIdle <= 0 {
		d.SessionIdle = 30 * time.Minute
	}
	if d.SLAAmber <= 0 {
		d.SLAAmber = time.Hour
	}
	if d.SLARed <= 0 {
		d.SLARed = 4 * time.Hour
	}
	if d.EscalationQueue == "" {
		d.EscalationQueue = "escalated"
	}
	return d
}

// Proxies returns TrustedProxies as prefixes, a single IP as a /32 or
// /128.
func (d Desk) Proxies() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(d.TrustedProxies))
	for _, s := range d.TrustedProxies {
		p, err := parseProxy(s)
		if err != nil {
			return nil, fmt.Errorf("desk.trusted_proxies: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// CheckDesk reports what is wrong for `ticketrouter desk`: the settings
// every command reads, the nats section and the desk section, which must
// be on.
func (c *Config) CheckDesk() error {
	k := c.checker()
	k.routing()
	k.nats()
	if !c.Desk.On() {
		k.fail("desk.listen", nil, "missing: want host:port for the desk")
	}
	k.desk()
	return k.result()
}

// desk checks the desk section, when it is on.
func (k *checker) desk() {
	d := k.c.Desk
	if !d.On() {
		return
	}
	host, port, err := net.SplitHostPort(d.Listen)
	if err != nil {
		k.fail("desk.listen", nil, "%q is not host:port or off", d.Listen)
	} else if d.Listen == k.c.HTTP.Listen && port != "0" { // port 0: each its own free port
		k.fail("desk.listen", nil, "%q is http.listen: the desk needs a listener of its own", d.Listen)
	}
	if d.Agents == "" {
		k.fail("desk.agents", nil, "missing: the agents file (ticketrouter agent add NAME --file FILE)")
	}
	if (d.TLSCert == "") != (d.TLSKey == "") {
		k.fail("desk", nil, "tls_cert and tls_key go together")
	}
	k.files("desk.tls_cert", d.TLSCert, "desk.tls_key", d.TLSKey, "desk.agents", d.Agents)
	for i, s := range d.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			k.fail(fmt.Sprintf("desk.trusted_proxies[%d]", i), nil, "%v", err)
		}
	}
	switch {
	case d.UserHeader != "" && len(d.TrustedProxies) == 0:
		k.fail("desk.user_header", nil, "set, but no trusted_proxies: the header would be believed from nobody")
	case d.UserHeader == "" && len(d.TrustedProxies) > 0:
		k.fail("desk.user_header", nil, "missing: trusted_proxies is set, so name the header the proxy puts the agent in")
	case d.UserHeader != "" && !headerToken(d.UserHeader):
		k.fail("desk.user_header", nil, "%q is not a header field name", d.UserHeader)
	}
	if err == nil && d.TLSCert == "" && len(d.TrustedProxies) == 0 && !loopback(host) {
		k.fail("desk.listen", nil, "%q is plain HTTP beyond loopback: set tls_cert and tls_key, or serve behind a proxy (trusted_proxies)", d.Listen)
	}
	notNegative(k, "desk.session_idle", d.SessionIdle)
	notNegative(k, "desk.sla_amber", d.SLAAmber)
	notNegative(k, "desk.sla_red", d.SLARed)
	if w := d.WithDefaults(); w.SLARed <= w.SLAAmber && d.SLARed >= 0 && d.SLAAmber >= 0 {
		k.fail("desk.sla_red", nil, "%s is not after sla_amber %s", w.SLARed, w.SLAAmber)
	}
	if q := d.EscalationQueue; q != "" && !validQueueName(q) {
		k.fail("desk.escalation_queue", nil, "%q is not a queue name: want lower-case letters, digits and hyphens", q)
	}
}

// loopback reports whether a listen host is a loopback address or
// localhost.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// validQueueName reports whether s is lower-case letters, digits and
// hyphens, as colours and dispositions are.
func validQueueName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return s != ""
}

// headerToken reports whether s is an HTTP field name (RFC 9110 token).
func headerToken(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return s != ""
}
