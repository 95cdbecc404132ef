// Package mail turns one raw support mail into a Request: it reads RFC 5322
// messages leniently (salvaging what it can from malformed mail and recording
// what was wrong), decodes their text, lists their attachments and detects
// key material anywhere in them. It does no I/O beyond the reader it is
// given: no network, no logging.
package mail

import (
	"strings"
	"time"
)

// Request is one support email as the routing policy sees it: who sent it,
// what it says, and what it carries, with the raw bytes reduced to their
// SHA-256 so that the same mail always yields the same Request.ID.
type Request struct {
	// ID is the lower-case hex SHA-256 of the raw message bytes.
	ID string
	// Size is the raw message size in bytes.
	Size int64

	// Header holds the top-level header fields in their original order,
	// values unfolded but not decoded. Fields past Limits.MaxHeaderBytes are
	// not kept (a From field among them still makes From ambiguous).
	Header []Field

	// From is the single From mailbox. It is set (address and name) only
	// when exactly one From header holds exactly one parsable mailbox;
	// otherwise FromProblem says why it is not trustworthy and From holds
	// the best salvage for display.
	From Mailbox
	// FromProblem is empty when From is unambiguous, else the reason
	// (several From headers, several mailboxes, unparsable, missing).
	FromProblem string
	// ReplyTo holds the Reply-To mailboxes; they never identify the sender.
	ReplyTo []Mailbox

	Subject   string
	MessageID string
	// InReplyTo and References name the mails this one answers, as
	// Message-IDs without angle brackets, in the order written; of a long
	// list only the last maxReferences (the newest) are kept. Both are the
	// sender's to write: they say what a mail claims to continue, nothing
	// more.
	InReplyTo  []string
	References []string
	// Date is the Date header; zero when missing or unparsable.
	Date time.Time

	// Loop carries the header facts that tell automatic mail from people.
	Loop Loop

	// Text is the readable text of the message (text/plain preferred,
	// HTML converted), decoded to UTF-8 with LF line ends, at most
	// Limits.MaxTextBytes long.
	Text string

	// Attachments lists every non-text part, as metadata only.
	Attachments []Attachment

	// KeyMaterial is set when private key material turned up anywhere in
	// the message: a PEM private key block, or a DER private key or
	// PKCS#12 file, binary or in base64. Every part is looked at, decoded,
	// including what Text and Attachments do not show: an HTML
	// alternative not kept, text past Limits.MaxTextBytes, parts past the
	// part and depth caps, a multipart preamble or epilogue, the raw
	// bytes. For a certificate authority that is a key compromise. A key
	// in the kept text is replaced in Text by "[private key removed]".
	KeyMaterial bool

	// Problems records, in order, everything that was malformed or cut
	// short while reading the message. A parsed message with no problems
	// has an empty list.
	Problems []string

	// Headerless is true when not a single header field could be read: the
	// input is not an email at all.
	Headerless bool
}

// FromAmbiguous reports whether the From header fails to name exactly one
// sender. Such a sender can never be treated as an account's admin.
func (r *Request) FromAmbiguous() bool { return r.FromProblem != "" }

// HeaderValues returns the values of the top-level header fields named name
// (case-insensitive), in message order.
func (r *Request) HeaderValues(name string) []string {
	var vs []string
	for _, f := range r.Header {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// Field is one header field as it appeared in the message.
type Field struct {
	Name  string
	Value string
}

// Mailbox is an email address with its display name, both decoded.
type Mailbox struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// Loop holds the header facts used to recognise auto-replies, bulk mail and
// bounces, which must never be answered (RFC 3834).
type Loop struct {
	AutoSubmitted  string // Auto-Submitted value, lower-cased, "" if absent
	Precedence     string // Precedence value, lower-cased
	ListID         string // List-Id value
	ReturnPathNull bool   // Return-Path is the null path <>
	ContentType    string // top-level media type, lower-cased
	ReportType     string // report-type parameter of multipart/report
}

// Attachment describes one attached part without keeping its bytes.
type Attachment struct {
	Name        string `json:"name,omitempty"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	// SHA256 is the hex digest of the decoded content; empty for secrets.
	SHA256 string `json:"sha256,omitempty"`
	// Secret names the key material found in the part ("pkcs12",
	// "private-key"), or is empty.
	Secret string `json:"secret,omitempty"`
	// Truncated is set when the part could not be read to its end.
	Truncated bool `json:"truncated,omitempty"`
}
