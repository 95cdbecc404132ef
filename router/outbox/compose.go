package outbox

import (
	"bytes"
	"errors"
	"fmt"
	netmail "net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/ticketrouter/ticketrouter/rules/answer"
	"golang.org/x/net/idna"
)

// Kind says what an outgoing mail is.
type Kind string

// Kinds of outgoing mail.
const (
	KindAcknowledgement Kind = "acknowledgement" // "received, your reference is TR-…"
	KindSelfService     Kind = "self-service"    // the self-service link and steps
	KindReply           Kind = "reply"           // an agent's reply from the desk
)

// ErrInvalid: a Mail (or an id) that the outbox refuses: a field with a
// line break, an id that is no safe token, a recipient that is not one
// mail address. The error names the field; match with errors.Is.
var ErrInvalid = errors.New("invalid mail")

// Mail is one outgoing mail, as a caller enqueues it. Every field is
// plain data: the outbox composes the message (headers, encoding) itself,
// and refuses a field that could add a header of its own.
type Mail struct {
	// ID names the mail for good, and is given by the caller so that
	// enqueueing it again is recognised: "ack.<ticket id>",
	// "reply.<ticket id>.<n>". Dot-separated tokens of ASCII letters,
	// digits, '-' and '_', at most 200 characters. It is the local part of
	// the mail's Message-ID.
	ID string `json:"id"`
	// Ticket is the id of the ticket the mail belongs to (one token).
	Ticket string `json:"ticket"`
	Kind   Kind   `json:"kind"`
	// To is the one recipient: an address, with a display name or not.
	To string `json:"to"`
	// Subject is the subject, UTF-8; encoded (RFC 2047) when not ASCII.
	Subject string `json:"subject"`
	// Text is the body, plain UTF-8 text, sent quoted-printable.
	Text string `json:"text"`
	// Lang is the text's language (Content-Language), e.g. "de"; optional.
	Lang string `json:"lang,omitempty"`
	// InReplyTo and References are Message-IDs without angle brackets.
	InReplyTo  string   `json:"in_reply_to,omitempty"`
	References []string `json:"references,omitempty"`
	// AutoReplied marks an automatic answer (RFC 3834): the mail carries
	// Auto-Submitted: auto-replied and X-Auto-Response-Suppress: All, so
	// that other responders do not answer it. Agents' replies are not.
	AutoReplied bool `json:"auto_replied,omitempty"`
}

// validToken matches an outbox id: dot-separated tokens, which keeps the
// stream subject, the bucket key and the Message-ID built from it valid.
var validToken = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// validLang matches a language tag (RFC 5646's characters).
var validLang = regexp.MustCompile(`^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$`)

// ValidID reports whether id can name an outgoing mail.
func ValidID(id string) bool { return len(id) <= 200 && validToken.MatchString(id) }

// MessageID returns the Message-ID of the outgoing mail id, without angle
// brackets: id@domain, the domain of the sender's address. The same mail
// always gets the same Message-ID, so a repeat after a crash is one the
// recipient's software can recognise, and replies to it can be traced
// back to it (ParseMessageID).
func MessageID(id, domain string) string {
	return id + "@" + strings.ToLower(domain)
}

// ParseMessageID reports whether msgid (with or without angle brackets)
// is the Message-ID of one of our outgoing mails, sent with domain, and
// which: the outbox id. The domain is compared without regard to case.
func ParseMessageID(msgid, domain string) (id string, ok bool) {
	msgid = strings.TrimSpace(msgid)
	msgid = strings.TrimSuffix(strings.TrimPrefix(msgid, "<"), ">")
	at := strings.LastIndexByte(msgid, '@')
	if at < 0 || !strings.EqualFold(msgid[at+1:], domain) || domain == "" {
		return "", false
	}
	id = msgid[:at]
	if !ValidID(id) {
		return "", false
	}
	return id, true
}

// Validate reports what is wrong with m, each problem wrapping
// ErrInvalid: CR or LF in any header field refuses the mail (header
// injection), as does an id that is no safe token or a recipient that is
// not one address.
func (m *Mail) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if !ValidID(m.ID) {
		bad("id", "%q is not dot-separated tokens of letters, digits, '-' and '_' (at most 200)", m.ID)
	}
	if m.Ticket == "" || len(m.Ticket) > 128 || strings.Contains(m.Ticket, ".") || !validToken.MatchString(m.Ticket) {
		bad("ticket", "%q is not one token of letters, digits, '-' and '_'", m.Ticket)
	}
	switch m.Kind {
	case KindAcknowledgement, KindSelfService, KindReply:
	default:
		bad("kind", "%q is not %s, %s or %s", m.Kind, KindAcknowledgement, KindSelfService, KindReply)
	}
	for _, f := range []struct{ name, v string }{{"to", m.To}, {"subject", m.Subject}, {"lang", m.Lang}, {"in_reply_to", m.InReplyTo}} {
		if strings.ContainsAny(f.v, "\r\n") {
			bad(f.name, "holds a line break")
		}
	}
	if _, err := recipient(m.To); err != nil {
		bad("to", "%v", err)
	}
	if !utf8.ValidString(m.Subject) || !utf8.ValidString(m.Text) {
		bad("text", "not UTF-8")
	}
	if m.Lang != "" && !validLang.MatchString(m.Lang) {
		bad("lang", "%q is not a language tag", m.Lang)
	}
	for i, id := range append([]string{m.InReplyTo}, m.References...) {
		if id == "" && i == 0 {
			continue
		}
		if !validMsgID(id) {
			name := "in_reply_to"
			if i > 0 {
				name = fmt.Sprintf("references[%d]", i-1)
			}
			bad(name, "%q is not a Message-ID (without angle brackets)", id)
		}
	}
	return errors.Join(errs...)
}

// validMsgID reports whether id is id-left@id-right of printable ASCII,
// without brackets, spaces or line breaks.
func validMsgID(id string) bool {
	at := strings.LastIndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || len(id) > 998 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return false
		}
	}
	return true
}

// recipient parses a recipient: one address, its domain turned into
// A-labels (bücher.test becomes xn--bcher-kva.test), its local part ASCII
// (the outbox does not ask for SMTPUTF8).
func recipient(to string) (*mail.Address, error) {
	if strings.ContainsAny(to, "\r\n") {
		return nil, errors.New("holds a line break")
	}
	a, err := netmail.ParseAddress(to)
	if err != nil {
		return nil, fmt.Errorf("%q is not one mail address", to)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 {
		return nil, fmt.Errorf("%q has no domain", to)
	}
	local, domain := a.Address[:at], a.Address[at+1:]
	for _, r := range local {
		if r > '~' {
			return nil, fmt.Errorf("%q has a local part that is not ASCII", to)
		}
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return nil, fmt.Errorf("%q has no valid domain", to)
	}
	return &mail.Address{Name: a.Name, Address: local + "@" + ascii}, nil
}

// compose writes m as a message from the sender, dated date, with the
// Message-ID of its id under the sender's domain. The same arguments give
// the same bytes, so a repeat is the same message.
func compose(m *Mail, from *mail.Address, date time.Time) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	to, _ := recipient(m.To)
	_, domain, _ := strings.Cut(from.Address, "@")
	var h mail.Header
	h.SetAddressList("From", []*mail.Address{from})
	h.SetAddressList("To", []*mail.Address{to})
	h.SetSubject(m.Subject)
	h.SetDate(date)
	h.SetMessageID(MessageID(m.ID, domain))
	if m.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{m.InReplyTo})
	}
	if len(m.References) > 0 {
		h.SetMsgIDList("References", m.References)
	}
	h.Set("MIME-Version", "1.0")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	if m.Lang != "" {
		h.Set("Content-Language", m.Lang)
	}
	if m.AutoReplied {
		h.Set("Auto-Submitted", "auto-replied")
		h.Set("X-Auto-Response-Suppress", "All")
	}
	// Every mail of ours says so, so that one that comes back (sent to
	// the support mailbox itself, or returned whole) is never answered.
	h.Set(answer.OwnMailHeader, m.Ticket)
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("compose %s: %w", m.ID, err)
	}
	text := strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := w.Write([]byte(text)); err != nil {
		return nil, fmt.Errorf("compose %s: %w", m.ID, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compose %s: %w", m.ID, err)
	}
	return buf.Bytes(), nil
}
