package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"github.com/ticketrouter/ticketrouter/ingest"
	"golang.org/x/net/publicsuffix"
)

// Sender authentication modes.
const (
	AuthOff     = "off"                    // the From address is compared as it stands
	AuthResults = "authentication-results" // trust the topmost header of a trusted authserv-id
	AuthDKIM    = "dkim"                   // verify DKIM signatures ourselves
	AuthBoth    = "both"                   // either of the two authenticates
)

// AuthModes lists the valid modes.
var AuthModes = []string{AuthOff, AuthResults, AuthDKIM, AuthBoth}

// SenderAuth says how a mail's sender must be authenticated before its From
// address can count as an account's admin. It is deployment configuration
// (which mail servers are trusted), not policy. The zero value is off.
type SenderAuth struct {
	Mode string `yaml:"mode"`
	// TrustedAuthservIDs are the authserv-ids of the mail servers whose
	// Authentication-Results headers are believed (RFC 8601): our own
	// inbound servers, which remove forged copies.
	TrustedAuthservIDs []string `yaml:"trusted_authserv_ids"`
	// Alignment is "relaxed" (the default: the signing domain and the From
	// domain share their registrable domain) or "strict" (they are equal).
	Alignment string `yaml:"alignment"`
}

// Check reports what is wrong with the settings, naming the field.
func (a SenderAuth) Check() error {
	if a.Mode != "" && !slices.Contains(AuthModes, a.Mode) {
		return fmt.Errorf("mode: %q is not one of %s", a.Mode, strings.Join(AuthModes, ", "))
	}
	if a.Alignment != "" && a.Alignment != "relaxed" && a.Alignment != "strict" {
		return fmt.Errorf("alignment: %q is neither relaxed nor strict", a.Alignment)
	}
	if (a.Mode == AuthResults || a.Mode == AuthBoth) && len(a.TrustedAuthservIDs) == 0 {
		return fmt.Errorf("trusted_authserv_ids: mode %s needs at least one trusted authserv-id", a.Mode)
	}
	return nil
}

func (a SenderAuth) on() bool { return a.Mode != "" && a.Mode != AuthOff }

// authVerdict is what sender authentication concluded.
type authVerdict struct {
	ok     bool
	retry  bool // a temporary failure: the answer may change, try again later
	reason string
}

// authenticate decides whether the mail provably comes from the domain of
// its From address.
func authenticate(cfg SenderAuth, req *ingest.Request) authVerdict {
	if !cfg.on() {
		return authVerdict{reason: "sender authentication is off"}
	}
	if req.FromAmbiguous() {
		return authVerdict{reason: "From is ambiguous: " + req.FromProblem}
	}
	from, err := senderEmail(req.From.Address)
	if err != nil {
		return authVerdict{reason: "From address is invalid"}
	}
	fromDomain := from[strings.LastIndexByte(from, '@')+1:]
	var ar, dk authVerdict
	if cfg.Mode == AuthResults || cfg.Mode == AuthBoth {
		if ar = cfg.authResults(req, fromDomain); ar.ok {
			return ar
		}
	}
	if cfg.Mode == AuthDKIM || cfg.Mode == AuthBoth {
		if dk = cfg.dkim(req, fromDomain); dk.ok {
			return dk
		}
	}
	switch cfg.Mode {
	case AuthResults:
		return ar
	case AuthDKIM:
		return dk
	}
	return authVerdict{retry: dk.retry, reason: ar.reason + "; " + dk.reason}
}

// authResults reads the topmost Authentication-Results header written by a
// trusted authserv-id; every other copy, above or below, is ignored, since
// anyone can write one.
func (cfg SenderAuth) authResults(req *ingest.Request, fromDomain string) authVerdict {
	var untrusted []string
	for _, f := range req.Header {
		if !strings.EqualFold(f.Name, "Authentication-Results") {
			continue
		}
		id, results, err := authres.Parse(f.Value)
		if !slices.ContainsFunc(cfg.TrustedAuthservIDs, func(t string) bool { return strings.EqualFold(t, id) }) {
			untrusted = append(untrusted, id)
			continue
		}
		if err != nil {
			return authVerdict{reason: fmt.Sprintf("Authentication-Results of trusted %s unreadable: %v", id, err)}
		}
		var seen []string
		for _, r := range results {
			switch r := r.(type) {
			case *authres.DMARCResult:
				if r.Value == authres.ResultPass && equalDomain(r.From, fromDomain) {
					return authVerdict{ok: true, reason: fmt.Sprintf("%s says dmarc=pass for %s", id, fromDomain)}
				}
				seen = append(seen, fmt.Sprintf("dmarc=%s header.from=%s", r.Value, r.From))
			case *authres.DKIMResult:
				if r.Value == authres.ResultPass && cfg.aligned(r.Domain, fromDomain) {
					return authVerdict{ok: true, reason: fmt.Sprintf("%s says dkim=pass for %s, aligned with %s", id, r.Domain, fromDomain)}
				}
				seen = append(seen, fmt.Sprintf("dkim=%s header.d=%s", r.Value, r.Domain))
			}
		}
		if len(seen) == 0 {
			return authVerdict{reason: fmt.Sprintf("trusted %s reports neither dmarc nor dkim", id)}
		}
		return authVerdict{reason: fmt.Sprintf("trusted %s: %s: not aligned with %s or not pass", id, strings.Join(seen, ", "), fromDomain)}
	}
	if len(untrusted) > 0 {
		return authVerdict{reason: "untrusted authserv-id " + strings.Join(untrusted, ", ")}
	}
	return authVerdict{reason: "no Authentication-Results header"}
}

// dkim reads our own verification of the signatures.
func (cfg SenderAuth) dkim(req *ingest.Request, fromDomain string) authVerdict {
	if !req.DKIMChecked {
		return authVerdict{reason: "DKIM not checked"}
	}
	if len(req.DKIM) == 0 {
		return authVerdict{reason: "no signature"}
	}
	var temp, unaligned, failed *ingest.DKIMSignature
	for i := range req.DKIM {
		s := &req.DKIM[i]
		switch {
		case s.Result == ingest.DKIMPass && cfg.aligned(s.Domain, fromDomain):
			return authVerdict{ok: true, reason: fmt.Sprintf("DKIM signature of %s verifies, aligned with %s", s.Domain, fromDomain)}
		case s.Result == ingest.DKIMTempError && cfg.aligned(s.Domain, fromDomain):
			temp = cmp.Or(temp, s)
		case s.Result == ingest.DKIMPass || s.Result == ingest.DKIMTempError:
			unaligned = cmp.Or(unaligned, s)
		default:
			failed = cmp.Or(failed, s)
		}
	}
	switch {
	case temp != nil: // a key we could not fetch may yet authenticate
		return authVerdict{retry: true, reason: "dns temporary error: " + temp.Reason}
	case unaligned != nil:
		return authVerdict{reason: fmt.Sprintf("not aligned: signed by %s, From domain %s", unaligned.Domain, fromDomain)}
	}
	return authVerdict{reason: fmt.Sprintf("signature of %s: %s", failed.Domain, failed.Reason)}
}

// aligned reports whether a signing domain vouches for the From domain:
// the same domain (strict), or the same registrable domain (relaxed).
func (cfg SenderAuth) aligned(signer, fromDomain string) bool {
	s, err := canonicalDomain(signer)
	if err != nil {
		return false
	}
	if s == fromDomain {
		return true
	}
	if cfg.Alignment == "strict" {
		return false
	}
	a, errA := publicsuffix.EffectiveTLDPlusOne(s)
	b, errB := publicsuffix.EffectiveTLDPlusOne(fromDomain)
	return errA == nil && errB == nil && a == b
}

func equalDomain(a, b string) bool {
	ca, err := canonicalDomain(a)
	return err == nil && ca == b
}
