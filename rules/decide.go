package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/address"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// Decision is what the policy makes of one request: the account and colour,
// the disposition and the table row that chose it, the checks behind it,
// and what the agent is told. Subject and Body are redacted.
type Decision struct {
	Intent       string
	IntentReason string
	// Account is the matched account, nil when none matched; Partner is
	// its partner account, if any.
	Account       *accounts.Account
	Partner       *accounts.Account
	AccountReason string
	Candidates    []string // account ids the mail partly matched
	Colour        string
	Disposition   string
	Row           int // id of the row that fired; 0 for unparsable mail
	Checks        Checks
	Guidance      []string
	// Never holds the indices in Guidance of the lines the policy marks
	// never: the rules that say never or do not.
	Never         []int
	IgnoredReason string // why row 1's "ignored" condition holds, if it does

	Subject    string // redacted
	Body       string // redacted
	Problems   []string
	KeyExposed bool

	// Retry is set when the decision may change once a temporary failure
	// (a DNS lookup for a DKIM key) goes away: the mail must not be routed
	// on it, but decided again later.
	Retry bool
	// Sender is the From address in canonical form, "" when ambiguous.
	Sender string
	// RateLimited is set by Policy.RateLimit when the sender or the
	// account has sent more requests than the policy allows.
	RateLimited bool

	// Trace explains, line by line, how the decision was reached.
	Trace []string
}

// Check is the outcome of one check on the request, with the reason an
// agent can read.
type Check struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason"`
}

// Checks are the facts the decision table looks at.
type Checks struct {
	SenderAuthenticated  Check `json:"sender_authenticated"`
	SenderIsAdmin        Check `json:"sender_is_admin"`
	SenderIsPartnerAdmin Check `json:"sender_is_partner_admin"`
	DomainNamed          Check `json:"domain_named"`
	OrderMatched         Check `json:"order_matched"`
	UsernameNamed        Check `json:"username_named"`
}

// maxCandidates caps the candidate accounts listed on an unmatched ticket.
const maxCandidates = 10

// facts is what Decide learns about a request before it walks the table.
type facts struct {
	ignored     bool
	sender      string // canonical From address; "" when ambiguous or invalid
	senderWhy   string
	lookalike   string              // the admin address the From address imitates, if any
	orders      []string            // order numbers named that exist, in text order
	domains     []string            // host names named, canonical, in text order
	usernames   []string            // usernames named after a cue that exist
	domainAccts []*accounts.Account // accounts holding a named domain, in text order
	domainVia   []string            // the domain each of domainAccts matched by
	account     *accounts.Account
	partner     *accounts.Account
	several     []string // ids of other accounts the mail names
	// doNotReset is a do_not_reset account the mail is linked to (the
	// chosen one, or any other it names), and doNotResetBy how.
	doNotReset   *accounts.Account
	doNotResetBy string
	senderAdmin  bool
	partnerAdmin bool
	domainNamed  bool
	usernameNmd  bool
	intent       string
}

// Decide applies the policy to one parsed request against the directory.
// It never fails: a request that matches nothing is "unmatched", one that
// could not be parsed at all is a dead letter.
//
// auth is what sender authentication concluded (package senderauth): when
// it is required, a From address equal to an admin address counts only
// once authenticated. When it cannot tell yet (a DNS lookup failed for
// now), Decision.Retry is set: the mail must be decided again later, not
// routed on this decision.
func Decide(p *Policy, dir *accounts.Directory, auth senderauth.Verdict, req *mail.Request) *Decision {
	d := &Decision{Colour: ColourUnknown}
	subject := strings.Join(strings.Fields(req.Subject), " ")
	all := subject + "\n" + req.Text
	hits := p.matcher.find(all)

	redacted, keyInText := p.redact(all, hits)
	d.Subject, d.Body, _ = strings.Cut(redacted, "\n")
	d.KeyExposed = keyInText || req.KeyMaterial || slices.ContainsFunc(req.Attachments, func(a mail.Attachment) bool { return a.Secret != "" })
	for _, pr := range req.Problems {
		r, _ := p.redact(pr, p.matcher.find(pr))
		d.Problems = append(d.Problems, r)
	}
	if d.KeyExposed {
		d.trace("secrets: a private key or PFX is in the mail: key_exposed")
	}

	if req.Headerless {
		d.Disposition, d.Intent = DispositionDeadletter, p.file.DefaultIntent
		why := Check{false, "the mail could not be parsed"}
		d.Checks = Checks{why, why, why, why, why, why}
		d.trace("row 0 (built in) %s: yes: not a single header field could be read", DispositionDeadletter)
		d.guide(p.notes(d, req, &facts{}))
		return d
	}

	f := &facts{}
	f.intent, d.IntentReason = p.intent(hits)
	d.Intent = f.intent
	d.trace("intent: %s (%s)", d.Intent, d.IntentReason)
	d.IgnoredReason = p.ignoredReason(req)
	if f.ignored = d.IgnoredReason != ""; f.ignored {
		d.trace("automatic mail: %s", d.IgnoredReason)
	}

	f.sender, f.senderWhy = senderAddress(req)
	d.Sender = f.sender
	if f.lookalike = lookalikeAdmin(dir, req, f.sender); f.lookalike != "" {
		d.trace("sender: %s", f.lookalike)
	}
	p.extract(dir, all, hits, f)
	p.chooseAccount(dir, f, d)
	if f.doNotReset, f.doNotResetBy = doNotResetNamed(dir, f); f.doNotReset != nil {
		d.trace("do_not_reset: the mail names %s by %s", f.doNotReset.ID, f.doNotResetBy)
	}
	p.check(req, auth, all, f, d)

	for _, r := range p.file.Rows {
		ok, why := r.When.eval(f)
		if ok {
			d.trace("row %d %s: yes: %s", r.ID, r.Disposition, why)
			d.Disposition, d.Row = r.Disposition, r.ID
			d.guide(p.expand(r.Guidance, d, ""))
			break
		}
		d.trace("row %d %s: no: %s", r.ID, r.Disposition, why)
	}
	if d.Disposition == "" { // a custom table without a catch-all row
		d.Disposition = DispositionUnmatched
		d.trace("no row applies: %s", DispositionUnmatched)
	}
	d.guide(p.notes(d, req, f))
	return d
}

// guide adds guidance lines to the decision, noting which are never rules.
func (d *Decision) guide(lines []Line) {
	for _, l := range lines {
		if l.Never {
			d.Never = append(d.Never, len(d.Guidance))
		}
		d.Guidance = append(d.Guidance, l.Text)
	}
}

func (d *Decision) trace(format string, args ...any) {
	d.Trace = append(d.Trace, fmt.Sprintf(format, args...))
}

// intent returns the first intent, in policy order, one of whose keywords
// the mail contains or one of whose proximity rules holds, and why.
func (p *Policy) intent(hits []hit) (string, string) {
	best := len(p.file.Intents)
	var why keyword
	for _, h := range hits {
		for _, kw := range h.kw {
			if (kw.kind == cueIntent || kw.kind == cueNearPair) && kw.intent < best {
				best, why = kw.intent, kw
			}
		}
	}
	if best == len(p.file.Intents) {
		return p.file.DefaultIntent, "no intent keyword: the default"
	}
	in := &p.file.Intents[best]
	if why.kind == cueNearPair {
		return in.Name, fmt.Sprintf("words %q (%s) and %q (%s) within %d characters",
			why.text, why.lang, why.with.text, why.with.lang, in.Near[why.near].Within)
	}
	return in.Name, fmt.Sprintf("keyword %q (%s)", why.text, why.lang)
}

// ignoredReason says why the mail is automatic and must never be answered,
// or returns "".
func (p *Policy) ignoredReason(req *mail.Request) string {
	ig := &p.file.Ignore
	l := &req.Loop
	field := automaticField(req, ig.HeaderFields)
	switch {
	case l.AutoSubmitted != "" && !slices.Contains(ig.AutoSubmittedExcept, l.AutoSubmitted):
		return "Auto-Submitted: " + l.AutoSubmitted
	case l.Precedence != "" && slices.Contains(ig.Precedence, l.Precedence):
		return "Precedence: " + l.Precedence
	case field != "":
		return field + " header"
	case ig.NullReturnPath && l.ReturnPathNull:
		return "null Return-Path <>"
	case slices.Contains(ig.ContentTypes, l.ContentType):
		return "content type " + l.ContentType
	}
	if at := strings.LastIndexByte(req.From.Address, '@'); at > 0 {
		if local := strings.ToLower(req.From.Address[:at]); slices.Contains(ig.BounceSenders, local) {
			return "bounce sender " + req.From.Address
		}
	}
	return ""
}

// automaticField returns the name of the first of names that the mail has
// as a header field with a value, other than a value that says no ("no",
// "none", "false"), or "".
func automaticField(req *mail.Request, names []string) string {
	for _, f := range req.Header {
		for _, n := range names {
			if !strings.EqualFold(f.Name, n) {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(f.Value)) {
			case "", "no", "none", "false":
			default:
				return n
			}
		}
	}
	return ""
}

// senderAddress returns the canonical From address, or "" and why the
// sender cannot be compared with an admin address.
func senderAddress(req *mail.Request) (string, string) {
	if req.FromAmbiguous() {
		return "", "From is ambiguous: " + req.FromProblem
	}
	addr, err := address.SenderEmail(req.From.Address)
	if err != nil {
		return "", "From address is invalid or not comparable: " + err.Error()
	}
	return addr, ""
}

// extract finds the order numbers, host names and usernames the mail names.
func (p *Policy) extract(dir *accounts.Directory, text string, hits []hit, f *facts) {
	l := p.file.Extraction.OrderNumberLength
	seen := map[string]bool{}
	scanOrderNumbers(text, l.Min, l.Max, func(n string) bool {
		if _, ok := dir.ByOrder(n); ok && !seen[n] {
			seen[n] = true
			f.orders = append(f.orders, n)
			return true
		}
		return false
	})
	named := map[string]bool{} // f.domains as a set: a mail may name thousands
	address.ScanDomains(text, func(dom string) {
		if named[dom] {
			return
		}
		named[dom] = true
		f.domains = append(f.domains, dom)
		as, via := dir.ByDomain(dom)
		for _, a := range as {
			if !containsAccount(f.domainAccts, a) {
				f.domainAccts = append(f.domainAccts, a)
				f.domainVia = append(f.domainVia, via)
			}
		}
	})
	for _, h := range hits {
		if !hasKind(h.kw, cueUsername) {
			continue
		}
		if u := p.usernameAfter(dir, text, h.end); u != "" && !slices.Contains(f.usernames, u) {
			f.usernames = append(f.usernames, u)
		}
	}
}

// maxUsernameBytes is the longest word taken for a username after a cue.
const maxUsernameBytes = 256

// usernameAfter returns the existing username written after a cue ending at
// pos ("username: jsmith", "my login is jsmith"), or "".
//
// It reads at most maxUsernameBytes a word: a text of cues without a space
// between them ("login.login.login...") must cost a look at each, not a
// read to the end of the text from each.
func (p *Policy) usernameAfter(dir *accounts.Directory, text string, pos int) string {
	for range 3 {
		pos = skipBlanks(text, pos)
		w := wordAt(text[:min(len(text), pos+maxUsernameBytes+1)], pos)
		if w == "" || len(w) > maxUsernameBytes {
			return ""
		}
		pos += len(w)
		if c := trimPunct(w); c == "" || p.connectors[fold(c)] {
			continue
		}
		if a, ok := dir.ByUsername(strings.Trim(w, `"'“”‘’«»()<>[],.;:!?`)); ok {
			return a.Username
		}
		return ""
	}
	return ""
}

// scanOrderNumbers calls try with each run of letters, digits and hyphens
// of length min..max holding a digit; when try rejects a run with hyphens,
// its hyphen-separated parts are tried too ("ORDER-1234567").
func scanOrderNumbers(text string, shortest, longest int, try func(string) bool) {
	candidate := func(s string) bool {
		return len(s) >= shortest && len(s) <= longest && strings.ContainsAny(s, "0123456789")
	}
	for i := 0; i < len(text); i++ {
		if text[i] < '0' || text[i] > '9' {
			continue
		}
		// A digit: take the whole run of order characters around it.
		start, end := i, i+1
		for start > 0 && orderByte[text[start-1]] {
			start--
		}
		for end < len(text) && orderByte[text[end]] {
			end++
		}
		i = end
		run := strings.Trim(text[start:end], "-")
		if len(run) < shortest || candidate(run) && try(run) || !strings.Contains(run, "-") {
			continue
		}
		for part := range strings.SplitSeq(run, "-") {
			if candidate(part) {
				try(part)
			}
		}
	}
}

// orderByte marks the bytes order numbers are made of: ASCII letters,
// digits and hyphens.
var orderByte = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-'
	}
	return t
}()

// chooseAccount applies POLICY.md's "Which account": an order number that
// exists; else the sender's admin address (of several accounts, the one
// whose domain is named); else a username named; else a domain named.
func (p *Policy) chooseAccount(dir *accounts.Directory, f *facts, d *Decision) {
	var candidates []string
	addCandidates := func(as []*accounts.Account) {
		for _, a := range as {
			if !slices.Contains(candidates, a.ID) {
				candidates = append(candidates, a.ID)
			}
		}
	}
	choose := func(a *accounts.Account, format string, args ...any) {
		f.account = a
		d.AccountReason = fmt.Sprintf(format, args...)
	}

	if len(f.orders) > 0 {
		var accts []*accounts.Account
		for _, n := range f.orders {
			a, _ := dir.ByOrder(n)
			if !containsAccount(accts, a) {
				accts = append(accts, a)
			}
		}
		choose(accts[0], "order number %s", f.orders[0])
		for _, a := range accts[1:] {
			f.several = append(f.several, a.ID)
		}
	}
	if f.account == nil && f.sender != "" {
		switch accts := dir.ByAdminEmail(f.sender); {
		case len(accts) == 1:
			choose(accts[0], "the sender is its admin email")
		case len(accts) > 1:
			named := slices.DeleteFunc(slices.Clone(accts), func(a *accounts.Account) bool { return !namesDomain(a, f.domains) })
			if len(named) == 1 {
				choose(named[0], "the sender is the admin email of %d accounts; the mail names this one's domain", len(accts))
			} else {
				addCandidates(accts)
				d.trace("account: the sender is the admin email of %d accounts and the mail names the domain of %d of them: not decided by sender", len(accts), len(named))
			}
		}
	}
	if f.account == nil && len(f.usernames) > 0 {
		var accts []*accounts.Account
		for _, u := range f.usernames {
			a, _ := dir.ByUsername(u)
			accts = append(accts, a)
		}
		if len(accts) == 1 {
			choose(accts[0], "username %s named", f.usernames[0])
		} else {
			addCandidates(accts)
			d.trace("account: the mail names %d usernames: not decided by username", len(accts))
		}
	}
	if f.account == nil {
		switch accts := f.domainAccts; {
		case len(accts) == 1:
			choose(accts[0], "domain %s named", f.domainVia[0])
		case len(accts) > 1:
			addCandidates(accts)
			d.trace("account: the mail names domains of %d accounts: not decided by domain", len(accts))
		}
	}
	if f.account != nil { // other accounts the mail names by domain
		for _, a := range f.domainAccts {
			if a.ID != f.account.ID && !slices.Contains(f.several, a.ID) {
				f.several = append(f.several, a.ID)
			}
		}
	}

	if f.account == nil {
		d.Candidates = candidates[:min(len(candidates), maxCandidates)]
		d.trace("account: none matched (%d candidates)", len(d.Candidates))
		return
	}
	d.Account = f.account
	d.Colour = f.account.Colour
	if f.account.Partner != "" {
		f.partner, _ = dir.Account(f.account.Partner)
		d.Partner = f.partner
	}
	d.trace("account: %s (%s), by %s", f.account.ID, f.account.Colour, d.AccountReason)
}

// doNotResetNamed returns the first do_not_reset account the mail is linked
// to and how: the chosen account, or any other one an order number, the
// sender's address, a username or a domain names. Whichever account the
// mail is decided for, naming one that must never be reset stops it.
func doNotResetNamed(dir *accounts.Directory, f *facts) (*accounts.Account, string) {
	if a := f.account; a != nil && a.DoNotReset {
		return a, "being the account matched"
	}
	for _, n := range f.orders {
		if a, ok := dir.ByOrder(n); ok && a.DoNotReset {
			return a, "order number " + n
		}
	}
	if f.sender != "" {
		for _, a := range dir.ByAdminEmail(f.sender) {
			if a.DoNotReset {
				return a, "the sender being its admin email"
			}
		}
	}
	for _, u := range f.usernames {
		if a, ok := dir.ByUsername(u); ok && a.DoNotReset {
			return a, "username " + u
		}
	}
	for i, a := range f.domainAccts {
		if a.DoNotReset {
			return a, "domain " + f.domainVia[i]
		}
	}
	return nil, ""
}

// containsAccount reports whether list holds the account a (by id: the
// directory builds a new Account value for every lookup).
func containsAccount(list []*accounts.Account, a *accounts.Account) bool {
	return slices.ContainsFunc(list, func(b *accounts.Account) bool { return b.ID == a.ID })
}

// namesDomain reports whether one of domains is, or lies below, one of the
// account's domains.
func namesDomain(a *accounts.Account, domains []string) bool {
	_, ok := namedDomain(a, domains)
	return ok
}

// namedDomain returns the first of domains that is, or lies below, one of
// the account's own or order domains.
func namedDomain(a *accounts.Account, domains []string) (string, bool) {
	for _, dom := range domains {
		for _, own := range accountDomains(a) {
			if dom == own || strings.HasSuffix(dom, "."+own) {
				return dom, true
			}
		}
	}
	return "", false
}

func accountDomains(a *accounts.Account) []string {
	out := a.Domains
	for _, o := range a.Orders {
		if o.Domain != "" && !slices.Contains(out, o.Domain) {
			out = append(slices.Clip(out), o.Domain)
		}
	}
	return out
}

// check works out the facts the table looks at, each with its reason.
func (p *Policy) check(req *mail.Request, auth senderauth.Verdict, text string, f *facts, d *Decision) {
	c := &d.Checks
	c.SenderAuthenticated = Check{auth.OK, auth.Reason}
	a := f.account
	if len(f.orders) > 0 {
		c.OrderMatched = Check{true, fmt.Sprintf("order %s exists (account %s)", f.orders[0], d.Account.ID)}
	} else {
		c.OrderMatched = Check{false, "no order number named that exists"}
	}
	if a == nil {
		why := "no account matched"
		c.SenderIsAdmin = Check{false, why}
		c.SenderIsPartnerAdmin = Check{false, why}
		c.DomainNamed = Check{false, why}
		c.UsernameNamed = Check{false, why}
		return
	}

	// The From address must match, and (when sender authentication is on)
	// be authenticated. A temporary failure to authenticate an address
	// that matches means: try again later, never "verified" now.
	senderCheck := func(admin, whose string) (Check, bool) {
		switch {
		case f.sender == "":
			return Check{false, f.senderWhy}, false
		case f.sender != admin:
			return Check{false, fmt.Sprintf("From %s is not the admin email of %s", f.sender, whose)}, false
		case !auth.OK && auth.Required:
			d.Retry = d.Retry || auth.Retry
			return Check{false, fmt.Sprintf("From %s is the admin email of %s, but the sender is not authenticated: %s", f.sender, whose, auth.Reason)}, false
		}
		return Check{true, fmt.Sprintf("From %s is the admin email of %s", f.sender, whose)}, true
	}
	c.SenderIsAdmin, f.senderAdmin = senderCheck(a.AdminEmail, "the account")
	if pa := f.partner; pa != nil {
		c.SenderIsPartnerAdmin, f.partnerAdmin = senderCheck(pa.AdminEmail, "partner "+pa.ID)
	} else {
		c.SenderIsPartnerAdmin = Check{false, "the account has no partner"}
	}
	if dom, ok := namedDomain(a, f.domains); ok {
		f.domainNamed = true
		c.DomainNamed = Check{true, fmt.Sprintf("the mail names %s", dom)}
	} else {
		c.DomainNamed = Check{false, "the mail names none of the account's domains"}
	}
	switch {
	case a.Username == "":
		c.UsernameNamed = Check{false, "the account has no username"}
	case slices.Contains(f.usernames, a.Username) || containsWord(text, a.Username):
		f.usernameNmd = true
		c.UsernameNamed = Check{true, fmt.Sprintf("the mail names the username %s", a.Username)}
	default:
		c.UsernameNamed = Check{false, "the mail does not name the account's username"}
	}
}

// eval reports whether the condition holds for the facts, with the reason:
// the first fact that fails, or every fact that holds.
func (c *Condition) eval(f *facts) (bool, string) {
	var held []string
	colour := ColourUnknown
	if f.account != nil {
		colour = f.account.Colour
	}
	if len(c.Colour) > 0 {
		if !slices.Contains(c.Colour, colour) {
			return false, "colour is " + colour
		}
		held = append(held, "colour "+colour)
	}
	if len(c.Intent) > 0 {
		if !slices.Contains(c.Intent, f.intent) {
			return false, "intent is " + f.intent
		}
		held = append(held, "intent "+f.intent)
	}
	for _, t := range []struct {
		want     *bool
		have     bool
		yes, not string
	}{
		{c.Ignored, f.ignored, "automatic mail", "not automatic mail"},
		{c.Account, f.account != nil, "an account matched", "no account matched"},
		{c.DoNotReset, f.doNotReset != nil, "the mail names a do_not_reset account", "the mail names no do_not_reset account"},
		{c.OrderMatched, len(f.orders) > 0, "an order matched", "no order matched"},
		{c.SenderIsAdmin, f.senderAdmin, "the sender is the admin", "the sender is not the admin"},
		{c.SenderIsPartnerAdmin, f.partnerAdmin, "the sender is the partner's admin", "the sender is not the partner's admin"},
		{c.DomainNamed, f.domainNamed, "a domain of the account is named", "no domain of the account is named"},
		{c.UsernameNamed, f.usernameNmd, "the username is named", "the username is not named"},
	} {
		if t.want == nil {
			continue
		}
		state := t.not
		if t.have {
			state = t.yes
		}
		if *t.want != t.have {
			return false, state
		}
		held = append(held, state)
	}
	if len(c.Any) > 0 {
		var whys []string
		ok := false
		for i := range c.Any {
			o, why := c.Any[i].eval(f)
			if o {
				held = append(held, why)
				ok = true
				break
			}
			whys = append(whys, why)
		}
		if !ok {
			return false, strings.Join(whys, " and ")
		}
	}
	if len(held) == 0 {
		return true, "always"
	}
	return true, strings.Join(held, ", ")
}

// notes are the guidance lines that depend on facts rather than on the row.
func (p *Policy) notes(d *Decision, req *mail.Request, f *facts) []Line {
	n := &p.file.Notes
	var out []Line
	add := func(lines []Line, reason string) { out = append(out, p.expand(lines, d, reason)...) }
	add(n.Always, "")
	automatic := d.Disposition == DispositionIgnored || d.Disposition == DispositionDeadletter
	if !automatic {
		if slices.Contains(p.file.IdentifiedDispositions, d.Disposition) {
			add(n.Identified, "")
		} else {
			add(n.NotIdentified, "")
		}
		if d.Account != nil {
			add(n.ResetGoesToAdmin, "")
		}
		if req.FromAmbiguous() {
			add(n.FromAmbiguous, req.FromProblem)
		}
		if f.lookalike != "" {
			add(n.LookalikeSender, f.lookalike)
		}
		if shown := displayNameAddress(req); shown != "" {
			add(n.DisplayNameSpoof, shown)
		}
		if rt := replyToElsewhere(req, f.sender); rt != "" {
			add(n.ReplyToDiffers, rt)
		}
		if len(f.several) > 0 {
			add(n.SeveralAccounts, strings.Join(append([]string{d.Account.ID}, f.several...), ", "))
		}
		if a := f.doNotReset; a != nil && (d.Account == nil || a.ID != d.Account.ID) {
			add(n.NamesDoNotReset, fmt.Sprintf("%s, by %s", a.ID, f.doNotResetBy))
		}
	}
	if d.KeyExposed {
		add(n.KeyExposed, "")
	}
	if len(req.Problems) > 0 {
		add(n.ParseProblems, "")
	}
	return out
}

// lookalikeAdmin says which admin address the From address imitates: one
// that it becomes under Unicode case folding, compatibility forms and IDNA
// mapping (a KELVIN SIGN for "k", a fullwidth "ａ", a zero-width space),
// though it is a different address. It returns "" when there is none.
func lookalikeAdmin(dir *accounts.Directory, req *mail.Request, sender string) string {
	if req.FromAmbiguous() {
		return ""
	}
	loose, ok := address.LooseEmail(req.From.Address)
	if !ok || loose == sender {
		return ""
	}
	accts := dir.ByAdminEmail(loose)
	if len(accts) == 0 {
		return ""
	}
	return fmt.Sprintf("%q looks like %s, the admin address of %s, but is another address", req.From.Address, accts[0].AdminEmail, accts[0].ID)
}

// displayNameAddress returns an address shown in the From display name that
// is not the From address itself ("admin@acmecorp.com" <x@evil.example>),
// or "".
func displayNameAddress(req *mail.Request) string {
	name := req.From.Name
	if !strings.Contains(name, "@") {
		return ""
	}
	for _, w := range strings.Fields(name) {
		w = strings.Trim(w, `"'<>()[],;:`)
		if !strings.Contains(w, "@") {
			continue
		}
		shown, err := address.SenderEmail(w)
		from, _ := address.SenderEmail(req.From.Address)
		if err != nil || shown != from {
			return w
		}
	}
	return ""
}

// replyToElsewhere returns a Reply-To address other than the sender, or "".
func replyToElsewhere(req *mail.Request, sender string) string {
	for _, m := range req.ReplyTo {
		if c, err := address.SenderEmail(m.Address); err != nil || c != sender {
			return m.Address
		}
	}
	return ""
}

// expand fills the placeholders of guidance lines.
func (p *Policy) expand(lines []Line, d *Decision, reason string) []Line {
	if len(lines) == 0 {
		return nil
	}
	out := make([]Line, len(lines))
	for i, line := range lines {
		l := line.Text
		out[i].Never = line.Never
		if strings.IndexByte(l, '{') < 0 {
			out[i].Text = l
			continue
		}
		var b strings.Builder
		for {
			open := strings.IndexByte(l, '{')
			end := strings.IndexByte(l[max(open, 0):], '}')
			if open < 0 || end < 0 {
				b.WriteString(l)
				break
			}
			b.WriteString(l[:open])
			b.WriteString(placeholder(l[open+1:open+end], d, reason))
			l = l[open+end+1:]
		}
		out[i].Text = b.String()
	}
	return out
}

// placeholder returns the value of a guidance placeholder.
func placeholder(name string, d *Decision, reason string) string {
	a, pa := d.Account, d.Partner
	switch name {
	case "reason":
		return reason
	case "account":
		if a != nil {
			return a.ID
		}
	case "account_name":
		if a != nil {
			return cmp.Or(a.Name, a.ID)
		}
	case "admin_email":
		if a != nil {
			return a.AdminEmail
		}
	case "partner":
		if pa != nil {
			return cmp.Or(pa.Name, pa.ID)
		}
		return "the partner"
	case "partner_admin_email":
		if pa != nil {
			return pa.AdminEmail
		}
	}
	return ""
}
