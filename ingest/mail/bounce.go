package mail

import (
	"bufio"
	"errors"
	"io"
	"net/textproto"
	"strings"

	"github.com/emersion/go-message"
)

// Bounce is what a delivery status notification (RFC 3464) says of the
// mail it returns: which mail (its Message-ID, from the returned
// headers), to whom and why delivery failed.
type Bounce struct {
	MessageID  string // the returned mail's, without angle brackets
	Recipient  string // the first failed recipient
	Status     string // its status code, e.g. 5.1.1
	Diagnostic string // the remote server's words, one line, bounded
}

// maxBounceRead bounds what ReadBounce reads of one part.
const maxBounceRead = 256 << 10

// ReadBounce reads a multipart/report; report-type=delivery-status mail and
// returns what it says failed. ok is false when the mail is no such report,
// reports no failed recipient (only delayed, relayed or delivered), or
// returns no Message-ID: a report that is unsure names nothing. It never
// fails on malformed input; it reads at most a bounded amount of each part.
func ReadBounce(r io.Reader) (b Bounce, ok bool) {
	e, err := message.Read(bufio.NewReader(r))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return Bounce{}, false
	}
	mt, params, _ := e.Header.ContentType()
	if !strings.EqualFold(mt, "multipart/report") || !strings.EqualFold(params["report-type"], "delivery-status") {
		return Bounce{}, false
	}
	mr := e.MultipartReader()
	if mr == nil {
		return Bounce{}, false
	}
	failed := false
	for range 16 {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		pt, _, _ := p.Header.ContentType()
		body := io.LimitReader(p.Body, maxBounceRead)
		switch strings.ToLower(pt) {
		case "message/delivery-status", "message/global-delivery-status":
			failed = readStatus(body, &b) || failed
		case "message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers":
			if b.MessageID == "" {
				b.MessageID = returnedID(body)
			}
		}
	}
	return b, failed && b.MessageID != ""
}

// readStatus reads the per-message and per-recipient field groups of a
// delivery-status part into b, from the first recipient whose Action is
// failed; it reports whether there was one.
func readStatus(r io.Reader, b *Bounce) bool {
	tp := textproto.NewReader(bufio.NewReader(r))
	for range 64 {
		h, err := tp.ReadMIMEHeader()
		if strings.EqualFold(strings.TrimSpace(h.Get("Action")), "failed") {
			b.Recipient = fieldAddress(h.Get("Final-Recipient"))
			b.Status = clip(oneLine(h.Get("Status")), 20)
			b.Diagnostic = clip(oneLine(h.Get("Diagnostic-Code")), 300)
			return true
		}
		if err != nil {
			if !errors.Is(err, io.EOF) || len(h) == 0 {
				return false
			}
		}
	}
	return false
}

// fieldAddress is the address of a "type; address" field value.
func fieldAddress(v string) string {
	if _, a, ok := strings.Cut(v, ";"); ok {
		v = a
	}
	return clip(oneLine(strings.TrimSpace(v)), 254)
}

// returnedID is the Message-ID of the returned mail or headers.
func returnedID(r io.Reader) string {
	h, _ := textproto.NewReader(bufio.NewReader(r)).ReadMIMEHeader()
	if v := h.Get("Message-Id"); v != "" {
		return oneLine(messageID(v))
	}
	return ""
}
