package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/address"
)

// Errors of CheckReply, for errors.Is.
var (
	// ErrReplySecret: the reply holds a password, a key or another
	// secret that redaction would remove from a ticket.
	ErrReplySecret = errors.New("a reply may not carry a secret")
	// ErrReplyAccountDetails: the reply goes to someone other than the
	// admin address on file and names the account's details.
	ErrReplyAccountDetails = errors.New("only the admin address on file may be told an account's details")
)

// minDetailLen is the shortest account detail looked for in a reply: a
// shorter id or username would be found in ordinary words.
const minDetailLen = 3

// CheckReply checks a reply the desk is about to send to the address to,
// about the account acct (nil when no account matched): text is its
// subject and body joined by "\n". It refuses a reply that the policy's
// secret redaction would change (a password after a cue, a private key),
// saying on which line, never what; and a reply to anyone but the
// account's admin address that names the account's id, admin address,
// username or one of its order numbers, saying which. The error wraps
// ErrReplySecret or ErrReplyAccountDetails.
func (p *Policy) CheckReply(text string, acct *accounts.Account, to string) error {
	redacted, key := p.redact(text, p.matcher.find(text))
	if redacted != text {
		what := "a password or other secret"
		if key {
			what = "a private key"
		}
		return fmt.Errorf("check reply: %w: it holds %s on line %d; remove it", ErrReplySecret, what, firstDifferentLine(text, redacted))
	}
	if acct == nil {
		return nil
	}
	if toAdmin(to, acct.AdminEmail) {
		return nil
	}
	var found []string
	if len(acct.ID) >= minDetailLen && containsWord(text, acct.ID) {
		found = append(found, "the account's id")
	}
	if acct.AdminEmail != "" && containsWord(text, acct.AdminEmail) {
		found = append(found, "the admin address")
	}
	if len(acct.Username) >= minDetailLen && containsWord(text, acct.Username) {
		found = append(found, "the username")
	}
	for _, o := range acct.Orders {
		if len(o.Number) >= minDetailLen && containsWord(text, o.Number) {
			found = append(found, "an order number")
			break
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("check reply: %w: the reply goes to %s, not the admin address on file, and names %s",
			ErrReplyAccountDetails, to, strings.Join(found, ", "))
	}
	return nil
}

// toAdmin reports whether to is the admin address on file, compared in
// canonical form.
func toAdmin(to, admin string) bool {
	if admin == "" {
		return false
	}
	t, err1 := address.CanonicalEmail(to)
	a, err2 := address.CanonicalEmail(admin)
	return err1 == nil && err2 == nil && t == a
}

// firstDifferentLine returns the 1-based line of the first byte where a
// and b differ.
func firstDifferentLine(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return strings.Count(a[:i], "\n") + 1
}
