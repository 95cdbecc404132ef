package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

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
// anyone can write one. That header is read to the RFC 8601 grammar and
// decided as a whole (judgeAuthResults); one that does not parse does not
// authenticate.
func (cfg SenderAuth) authResults(req *ingest.Request, fromDomain string) authVerdict {
	var untrusted []string
	for _, f := range req.Header {
		if !strings.EqualFold(f.Name, "Authentication-Results") {
			continue
		}
		ar, err := parseAuthResults(f.Value)
		switch {
		case ar.AuthservID == "" && err != nil:
			untrusted = append(untrusted, fmt.Sprintf("unreadable (%v)", err))
			continue
		case !cfg.trusts(ar.AuthservID):
			untrusted = append(untrusted, fmt.Sprintf("%q", clipText(ar.AuthservID, 64)))
			continue
		}
		if err != nil {
			return authVerdict{reason: fmt.Sprintf("trusted %s: Authentication-Results unreadable: %v", ar.AuthservID, err)}
		}
		return cfg.judgeAuthResults(ar, fromDomain)
	}
	switch n := len(untrusted); {
	case n > 3:
		return authVerdict{reason: fmt.Sprintf("untrusted authserv-id %s and %d more", strings.Join(untrusted[:3], ", "), n-3)}
	case n > 0:
		return authVerdict{reason: "untrusted authserv-id " + strings.Join(untrusted, ", ")}
	}
	return authVerdict{reason: "no Authentication-Results header"}
}

// trusts reports whether id is one of the trusted authserv-ids, ASCII
// case-insensitively: Unicode folding would let "K" (U+212A KELVIN SIGN)
// stand for "k".
func (cfg SenderAuth) trusts(id string) bool {
	return id != "" && slices.ContainsFunc(cfg.TrustedAuthservIDs, func(t string) bool { return equalFoldASCII(t, id) })
}

// judgeAuthResults decides on the whole of a trusted header, never on its
// first match:
//
//   - dmarc: a pass counts only with header.from equal to the From domain.
//     Any other dmarc result (fail, quarantine, temperror, ...) and any
//     result for another domain forbid authentication; "none" (no policy)
//     neither counts nor forbids. Two dmarc results are ambiguous.
//   - dkim: a pass counts only with header.d (header.i's domain when there
//     is no header.d) aligned with the From domain. A fail, a policy or a
//     result this code does not know, for an aligned domain or for an
//     unnamed one, forbids authentication. neutral, permerror and
//     temperror say a signature could not be evaluated (an unsupported
//     algorithm, a missing key, a timeout), nothing about the content:
//     they neither count nor forbid. "none" beside another dkim result is
//     a contradiction.
//   - spf never authenticates, but a fail for an aligned smtp.mailfrom
//     (smtp.helo without one), or for an unnamed domain, forbids.
//   - A dmarc=pass rests on an aligned dkim or spf pass (RFC 7489): when
//     the header reports dkim or spf but no pass of theirs that could
//     carry it (aligned, relaxed, or without a domain), the header
//     contradicts itself. A header with dmarc alone (a DMARC milter
//     writing its own field) is taken as it stands.
//
// What forbids wins over any pass. A property counts only where the
// grammar puts it, never inside a comment; and a header whose comments or
// quoted strings hold what reads as a result does not authenticate
// (tamperSign), in case the server let such text out of them.
func (cfg SenderAuth) judgeAuthResults(ar authResults, fromDomain string) authVerdict {
	no := func(format string, args ...any) authVerdict {
		return authVerdict{reason: "trusted " + ar.AuthservID + ": " + fmt.Sprintf(format, args...)}
	}
	switch {
	case ar.Version != "" && ar.Version != "1":
		return no("version %s of Authentication-Results is not understood", clipText(ar.Version, 16)) // digits
	case ar.None:
		return no("no authentication done (none)")
	}
	var t arTally
	for i := range ar.Results {
		if err := cfg.tally(&t, &ar.Results[i], fromDomain); err != nil {
			return no("%v", err)
		}
	}
	switch {
	case t.dmarcs > 1:
		return no("%d dmarc results: ambiguous", t.dmarcs)
	case t.dkimNone > 0 && t.dkims > t.dkimNone:
		return no("dkim=none beside %d other dkim results: contradictory", t.dkims-t.dkimNone)
	case t.veto != "":
		return no("%s%s", t.veto, t.winsOver())
	case t.dmarcPass && t.dkims+t.spfs > 0 && !t.dmarcBacked:
		return no("dmarc=pass for %s, but no dkim or spf pass aligned with it: contradictory", fromDomain)
	case !t.dmarcPass && t.dkimPass == "":
		if t.dmarcs == 0 && t.dkims == 0 {
			return no("reports neither dmarc nor dkim")
		}
		return no("no aligned pass: %s", strings.Join(t.seen, ", "))
	}
	if sign := tamperSign(ar); sign != "" {
		return no("%s: not authenticated, though it reads as a pass", sign)
	}
	if t.dmarcPass {
		return authVerdict{ok: true, reason: fmt.Sprintf("trusted %s says dmarc=pass for %s", ar.AuthservID, fromDomain)}
	}
	return authVerdict{ok: true, reason: fmt.Sprintf("trusted %s says dkim=pass for %s, aligned with %s", ar.AuthservID, t.dkimPass, fromDomain)}
}

// arTally is what the results of one header say about the From domain.
type arTally struct {
	dmarcs, dkims, dkimNone, spfs int
	dmarcPass                     bool   // a dmarc=pass for the From domain
	dmarcBacked                   bool   // a dkim or spf pass that a dmarc=pass can rest on
	dkimPass                      string // the aligned domain of the first dkim=pass
	veto                          string // the first result that forbids
	vetoMethod                    string
	seen                          []string // what neither counts nor forbids
}

// winsOver says which pass a veto beats, "" if there is none.
func (t *arTally) winsOver() string {
	switch {
	case t.vetoMethod == "dkim" && t.dkimPass != "":
		return " wins over its pass"
	case t.dmarcPass:
		return " wins over dmarc=pass"
	case t.dkimPass != "":
		return " wins over dkim=pass for " + t.dkimPass
	}
	return ""
}

func (t *arTally) forbid(method, format string, args ...any) {
	if t.veto == "" {
		t.veto, t.vetoMethod = fmt.Sprintf(format, args...), method
	}
}

func (t *arTally) note(format string, args ...any) {
	if len(t.seen) < 4 {
		t.seen = append(t.seen, fmt.Sprintf(format, args...))
	}
}

// tally adds one result to t; an error makes the whole header ambiguous.
func (cfg SenderAuth) tally(t *arTally, r *resinfo, fromDomain string) error {
	switch r.Method {
	case "dmarc", "dkim", "spf":
		if r.MethodVersion != "" && r.MethodVersion != "1" {
			return fmt.Errorf("%s/%s: unknown version of the method", r.Method, clipText(r.MethodVersion, 16))
		}
	default:
		return nil // iprev, arc, auth, ...: not read
	}
	res := clipText(r.Result, 24)
	switch r.Method {
	case "dmarc":
		t.dmarcs++
		from, err := oneProp(r, "header", "from")
		if err != nil {
			return err
		}
		switch {
		case from == "" && r.Result == "pass":
			t.note("dmarc=pass without header.from")
		case from == "" && r.Result == "none":
			t.note("dmarc=none")
		case from == "":
			t.forbid("dmarc", "dmarc=%s for an unnamed domain", res)
		case !equalDomain(domainOf(from), fromDomain):
			t.forbid("dmarc", "dmarc=%s is for %s, not for the From domain %s", res, showDomain(from), fromDomain)
		case r.Result == "pass":
			t.dmarcPass = true
		case r.Result == "none":
			t.note("dmarc=none for %s", fromDomain)
		default:
			t.forbid("dmarc", "dmarc=%s for %s", res, fromDomain)
		}
	case "dkim":
		t.dkims++
		d, err := oneProp(r, "header", "d")
		if err != nil {
			return err
		}
		if d == "" {
			i, err := oneProp(r, "header", "i")
			if err != nil {
				return err
			}
			d = domainOf(i)
		}
		aligned := d != "" && cfg.aligned(d, fromDomain)
		t.dmarcBacked = t.dmarcBacked || r.Result == "pass" && backs(d, fromDomain)
		switch r.Result {
		case "none":
			t.dkimNone++
			t.note("dkim=none")
		case "pass":
			switch {
			case d == "":
				t.note("dkim=pass without header.d")
			case aligned && t.dkimPass == "":
				t.dkimPass = showDomain(d)
			case !aligned:
				t.note("dkim=pass for %s, not aligned with %s", showDomain(d), fromDomain)
			}
		case "neutral", "permerror", "temperror":
			t.note("dkim=%s", res)
		default: // fail, policy, or a result not in RFC 8601
			switch {
			case d == "":
				t.forbid("dkim", "dkim=%s for an unnamed domain", res)
			case aligned:
				t.forbid("dkim", "dkim=%s for %s", res, showDomain(d))
			default:
				t.note("dkim=%s for %s", res, showDomain(d))
			}
		}
	case "spf":
		d, err := oneProp(r, "smtp", "mailfrom")
		if err != nil {
			return err
		}
		if d == "" {
			if d, err = oneProp(r, "smtp", "helo"); err != nil {
				return err
			}
		}
		d = domainOf(d)
		t.spfs++
		t.dmarcBacked = t.dmarcBacked || r.Result == "pass" && backs(d, fromDomain)
		if r.Result == "fail" {
			switch {
			case d == "":
				t.forbid("spf", "spf=fail for an unnamed domain")
			case cfg.aligned(d, fromDomain):
				t.forbid("spf", "spf=fail for %s", showDomain(d))
			}
		}
	}
	return nil
}

// backs reports whether a dkim or spf pass for domain d ("" when the header
// does not say) could be what a dmarc=pass for fromDomain rests on: DMARC
// aligns relaxed unless the domain's policy says strict, which the header
// does not tell.
func backs(d, fromDomain string) bool {
	return d == "" || SenderAuth{Alignment: "relaxed"}.aligned(d, fromDomain)
}

// oneProp returns the value of the property ptype.name of r, "" if it has
// none; twice is ambiguous.
func oneProp(r *resinfo, ptype, name string) (string, error) {
	vs := r.props(ptype, name)
	switch {
	case len(vs) > 1:
		return "", fmt.Errorf("%s has %s.%s twice: ambiguous", r.Method, ptype, name)
	case len(vs) == 1 && vs[0] == "":
		return "", fmt.Errorf("%s has an empty %s.%s", r.Method, ptype, name)
	case len(vs) == 1:
		return vs[0], nil
	}
	return "", nil
}

// domainOf returns the domain of a property value: what follows the last
// "@" of an address (a domain holds none), or the value itself.
func domainOf(v string) string { return v[strings.LastIndexByte(v, '@')+1:] }

// showDomain returns a domain from a header for a reason: in canonical
// form when it has one of plain host characters, else escaped and clipped.
func showDomain(raw string) string {
	if c, err := canonicalDomain(domainOf(raw)); err == nil && isPlainHost(c) {
		return c
	}
	return fmt.Sprintf("%q", clipText(raw, 64))
}

// isPlainHost reports whether s has only lower-case letters, digits, '-'
// and '.', so that it can go into a reason unescaped.
func isPlainHost(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return s != ""
}

// tamperSign looks in the text a header's grammar skips, its comments and
// quoted strings, for what a server that copies sender-chosen text (an
// envelope sender, a HELO name) without escaping it could have let out
// into the header: a dmarc, dkim or spf result after a ';', or a property
// read here ("header.from=", "smtp.mailfrom=", ...); or a comment with an
// odd number of double quotes, the sign of a quoted local-part cut short
// by a ')' it held. It returns a description of the first one, "" if there
// is none. Servers write neither into their own comments.
func tamperSign(ar authResults) string {
	for _, c := range ar.Comments {
		if s := resultLike(c); s != "" {
			return fmt.Sprintf("a comment holds %q, which reads as an authentication result", clipText(s, 48))
		}
		if quotes := strings.Count(c, `"`) - strings.Count(c, `\"`); quotes%2 == 1 {
			return fmt.Sprintf("a comment holds unbalanced double quotes (%q): a quoted address cut short by a ')' in it", clipText(c, 48))
		}
	}
	for _, q := range ar.Quoted {
		if s := resultLike(q); s != "" {
			return fmt.Sprintf("a quoted string holds %q, which reads as an authentication result", clipText(s, 48))
		}
	}
	return ""
}

// resultLike returns the part of text from the first thing in it that
// reads as a result of dmarc, dkim or spf after a ';', or as a property
// read by judgeAuthResults; white space may surround the punctuation, and
// case does not matter. "" if there is none.
func resultLike(text string) string {
	toks := wordsAndMarks(text)
	for i, tk := range toks {
		rest := toks[i:]
		switch {
		case tk.s == ";" && len(rest) >= 3 && isOneOf(rest[1].s, "dmarc", "dkim", "spf") && isOneOf(rest[2].s, "=", "/"):
			return text[tk.at:]
		case len(rest) >= 4 && isOneOf(tk.s, "header", "smtp") && rest[1].s == "." &&
			isOneOf(rest[2].s, "from", "d", "i", "mailfrom", "helo") && rest[3].s == "=":
			return text[tk.at:]
		}
	}
	return ""
}

// mark is a word (letters, digits, '-'; lower case) or a single other
// character of a text, and where it starts.
type mark struct {
	s  string
	at int
}

// wordsAndMarks splits text into marks, skipping white space.
func wordsAndMarks(text string) []mark {
	var ms []mark
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case isLetDig(c) || c == '-':
			j := i
			for j < len(text) && (isLetDig(text[j]) || text[j] == '-') {
				j++
			}
			ms = append(ms, mark{strings.ToLower(text[i:j]), i})
			i = j
		default:
			ms = append(ms, mark{text[i : i+1], i})
			i++
		}
	}
	return ms
}

func isOneOf(s string, set ...string) bool { return slices.Contains(set, s) }

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
