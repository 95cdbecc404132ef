package senderauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules/address"
	"golang.org/x/net/publicsuffix"
)

// Sender authentication modes.
const (
	ModeOff     = "off"                    // the From address is compared as it stands
	ModeResults = "authentication-results" // trust the topmost header of a trusted authserv-id
	ModeDKIM    = "dkim"                   // verify DKIM signatures ourselves
	ModeBoth    = "both"                   // either of the two authenticates
)

// Modes lists the valid modes.
var Modes = []string{ModeOff, ModeResults, ModeDKIM, ModeBoth}

// Config says how a mail's sender must be authenticated before its From
// address can count as an account's admin. It is deployment configuration
// (which mail servers are trusted), not policy. The zero value is off.
type Config struct {
	Mode string `yaml:"mode"`
	// TrustedAuthservIDs are the authserv-ids of the mail servers whose
	// Authentication-Results headers are believed (RFC 8601): our own
	// inbound servers, which remove forged copies.
	TrustedAuthservIDs []string `yaml:"trusted_authserv_ids"`
	// Alignment is "relaxed" (the default: the signing domain and the From
	// domain share their registrable domain) or "strict" (they are equal).
	Alignment string `yaml:"alignment"`
	// DNSTimeout bounds each DKIM key lookup; 5s when zero.
	DNSTimeout time.Duration `yaml:"dns_timeout"`
	// MaxSignatures caps the DKIM signatures checked in one mail; 5 when zero.
	MaxSignatures int `yaml:"max_signatures"`
}

// Problem is one thing wrong with the settings: the field (its YAML key)
// and what is wrong with it.
type Problem struct {
	Field, Msg string
}

// Problems lists what is wrong with the settings, field by field.
func (c Config) Problems() []Problem {
	var ps []Problem
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{field, fmt.Sprintf(format, args...)})
	}
	if c.Mode != "" && !slices.Contains(Modes, c.Mode) {
		add("mode", "%q is not one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	if c.Alignment != "" && c.Alignment != "relaxed" && c.Alignment != "strict" {
		add("alignment", "%q is neither relaxed nor strict", c.Alignment)
	}
	if c.ReadsResults() && len(c.TrustedAuthservIDs) == 0 {
		add("trusted_authserv_ids", "mode %s needs at least one trusted authserv-id", c.Mode)
	}
	if c.DNSTimeout < 0 {
		add("dns_timeout", "%s is negative", c.DNSTimeout)
	}
	if c.MaxSignatures < 0 {
		add("max_signatures", "%d is negative", c.MaxSignatures)
	}
	return ps
}

// Check reports what is wrong with the settings, each problem beginning
// with its field.
func (c Config) Check() error {
	var errs []error
	for _, p := range c.Problems() {
		errs = append(errs, fmt.Errorf("%s: %s", p.Field, p.Msg))
	}
	return errors.Join(errs...)
}

// ReadsResults reports whether the mode believes the Authentication-Results
// headers of the trusted servers.
func (c Config) ReadsResults() bool { return c.Mode == ModeResults || c.Mode == ModeBoth }

// Required reports whether a sender must be authenticated to count as an
// admin: the mode is set and not off.
func (c Config) Required() bool { return c.Mode != "" && c.Mode != ModeOff }

// checksDKIM reports whether the mode verifies DKIM signatures itself.
func (c Config) checksDKIM() bool { return c.Mode == ModeDKIM || c.Mode == ModeBoth }

// Verdict is what sender authentication concluded about one mail: whether
// it provably comes from the domain of its From address, and why.
type Verdict struct {
	// Required is set when authentication counts: without it, a From
	// address equal to an admin address is enough (mode off).
	Required bool
	// OK is set when the sender is authenticated.
	OK bool
	// Retry is set on a temporary failure: the answer may change, so the
	// mail should be decided again later rather than refused now.
	Retry bool
	// Reason says why, for the ticket's checks.
	Reason string
}

// Checker authenticates the senders of mails as its Config says: it reads
// the trusted Authentication-Results header and, when the mode asks for
// it, verifies the DKIM signatures itself.
type Checker struct {
	cfg  Config
	dkim *DKIMVerifier // nil when the mode does not verify DKIM
}

// NewChecker returns a Checker for cfg whose DKIM key lookups, if any, go
// to res (nil: the system resolver).
func NewChecker(cfg Config, res Resolver) *Checker {
	c := &Checker{cfg: cfg}
	if cfg.checksDKIM() {
		c.dkim = &DKIMVerifier{Resolver: res, Timeout: cfg.DNSTimeout, MaxSignatures: cfg.MaxSignatures}
	}
	return c
}

// Check authenticates the sender of req, whose raw bytes raw reads (read
// only when DKIM signatures are verified). The error is non-nil only when
// reading raw fails.
func (c *Checker) Check(ctx context.Context, req *mail.Request, raw io.Reader) (Verdict, error) {
	if c.dkim == nil {
		return Judge(c.cfg, req, nil), nil
	}
	sigs, err := c.dkim.Verify(ctx, raw)
	if err != nil {
		return Verdict{}, fmt.Errorf("authenticate sender: %w", err)
	}
	if sigs == nil {
		sigs = []DKIMSignature{}
	}
	return Judge(c.cfg, req, sigs), nil
}

// Judge decides whether req provably comes from the domain of its From
// address, from its headers and sigs, the outcome of verifying its DKIM
// signatures (nil: not verified). It does no I/O.
func Judge(cfg Config, req *mail.Request, sigs []DKIMSignature) Verdict {
	v := judge(cfg, req, sigs)
	v.Required = cfg.Required()
	return v
}

func judge(cfg Config, req *mail.Request, sigs []DKIMSignature) Verdict {
	if !cfg.Required() {
		return Verdict{Reason: "sender authentication is off"}
	}
	if req.FromAmbiguous() {
		return Verdict{Reason: "From is ambiguous: " + req.FromProblem}
	}
	from, err := address.SenderEmail(req.From.Address)
	if err != nil {
		return Verdict{Reason: "From address is invalid"}
	}
	fromDomain := from[strings.LastIndexByte(from, '@')+1:]
	var ar, dk Verdict
	if cfg.ReadsResults() {
		if ar = cfg.authResults(req, fromDomain); ar.OK {
			return ar
		}
	}
	if cfg.checksDKIM() {
		if dk = cfg.dkimVerdict(sigs, fromDomain); dk.OK {
			return dk
		}
	}
	switch cfg.Mode {
	case ModeResults:
		return ar
	case ModeDKIM:
		return dk
	}
	return Verdict{Retry: dk.Retry, Reason: ar.Reason + "; " + dk.Reason}
}

// authResults reads the topmost Authentication-Results header written by a
// trusted authserv-id; every other copy, above or below, is ignored, since
// anyone can write one. That header is read to the RFC 8601 grammar and
// decided as a whole (judgeAuthResults); one that does not parse does not
// authenticate.
func (cfg Config) authResults(req *mail.Request, fromDomain string) Verdict {
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
			return Verdict{Reason: fmt.Sprintf("trusted %s: Authentication-Results unreadable: %v", ar.AuthservID, err)}
		}
		return cfg.judgeAuthResults(ar, fromDomain)
	}
	switch n := len(untrusted); {
	case n > 3:
		return Verdict{Reason: fmt.Sprintf("untrusted authserv-id %s and %d more", strings.Join(untrusted[:3], ", "), n-3)}
	case n > 0:
		return Verdict{Reason: "untrusted authserv-id " + strings.Join(untrusted, ", ")}
	}
	return Verdict{Reason: "no Authentication-Results header"}
}

// trusts reports whether id is one of the trusted authserv-ids, ASCII
// case-insensitively: Unicode folding would let "K" (U+212A KELVIN SIGN)
// stand for "k".
func (cfg Config) trusts(id string) bool {
	return id != "" && slices.ContainsFunc(cfg.TrustedAuthservIDs, func(t string) bool { return address.EqualFoldASCII(t, id) })
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
func (cfg Config) judgeAuthResults(ar authResults, fromDomain string) Verdict {
	no := func(format string, args ...any) Verdict {
		return Verdict{Reason: "trusted " + ar.AuthservID + ": " + fmt.Sprintf(format, args...)}
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
		return Verdict{OK: true, Reason: fmt.Sprintf("trusted %s says dmarc=pass for %s", ar.AuthservID, fromDomain)}
	}
	return Verdict{OK: true, Reason: fmt.Sprintf("trusted %s says dkim=pass for %s, aligned with %s", ar.AuthservID, t.dkimPass, fromDomain)}
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
func (cfg Config) tally(t *arTally, r *resinfo, fromDomain string) error {
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
	return d == "" || Config{Alignment: "relaxed"}.aligned(d, fromDomain)
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
	if c, err := address.StrictDomain(domainOf(raw)); err == nil && isPlainHost(c) {
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

// dkimVerdict reads our own verification of the signatures.
func (cfg Config) dkimVerdict(sigs []DKIMSignature, fromDomain string) Verdict {
	if sigs == nil {
		return Verdict{Reason: "DKIM not checked"}
	}
	if len(sigs) == 0 {
		return Verdict{Reason: "no signature"}
	}
	var temp, unaligned, failed *DKIMSignature
	for i := range sigs {
		s := &sigs[i]
		switch {
		case s.Result == DKIMPass && cfg.aligned(s.Domain, fromDomain):
			return Verdict{OK: true, Reason: fmt.Sprintf("DKIM signature of %s verifies, aligned with %s", s.Domain, fromDomain)}
		case s.Result == DKIMTempError && cfg.aligned(s.Domain, fromDomain):
			temp = cmp.Or(temp, s)
		case s.Result == DKIMPass || s.Result == DKIMTempError:
			unaligned = cmp.Or(unaligned, s)
		default:
			failed = cmp.Or(failed, s)
		}
	}
	switch {
	case temp != nil: // a key we could not fetch may yet authenticate
		return Verdict{Retry: true, Reason: "dns temporary error: " + temp.Reason}
	case unaligned != nil:
		return Verdict{Reason: fmt.Sprintf("not aligned: signed by %s, From domain %s", unaligned.Domain, fromDomain)}
	}
	return Verdict{Reason: fmt.Sprintf("signature of %s: %s", failed.Domain, failed.Reason)}
}

// aligned reports whether a signing domain vouches for the From domain:
// the same domain (strict), or the same registrable domain (relaxed).
func (cfg Config) aligned(signer, fromDomain string) bool {
	s, err := address.StrictDomain(signer)
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
	ca, err := address.StrictDomain(a)
	return err == nil && ca == b
}
