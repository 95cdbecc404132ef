package answer

import (
	"strings"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
)

// OwnMailHeader is the header field ticketrouter puts on every mail it
// sends (its value: the ticket number). A mail that carries it is one of
// ours come back, through a forwarder or a misconfigured alias that
// dropped Auto-Submitted: never answered, or two services answer each
// other for ever.
const OwnMailHeader = "X-Ticketrouter-Ticket"

// listFields are the mailing-list header fields (RFC 2369, RFC 2919): list
// mail is never answered automatically (RFC 3834 section 2).
var listFields = []string{"List-Id", "List-Unsubscribe", "List-Post", "List-Help", "List-Subscribe", "List-Owner", "List-Archive"}

// autoReplyFields are header fields whose mere presence marks an automatic
// answer of some program.
var autoReplyFields = []string{"X-Autoreply", "X-Autorespond", "X-Autoresponse", OwnMailHeader}

// robotLocalParts are the local parts, lower case without '-', '_' and
// '.', of senders that are programs: a local part that starts with one is
// never answered ("noreply-billing", "mailer-daemon").
var robotLocalParts = []string{"mailerdaemon", "postmaster", "noreply", "donotreply", "dontreply"}

// AutoReplyAllowed reports whether req may get an automatic answer (an
// acknowledgement or a self-service answer) under RFC 3834, and when not,
// why, in a short sentence. It refuses mail that says it is automatic
// (Auto-Submitted other than "no", Precedence bulk, junk, list or
// auto_reply, X-Autoreply, X-Autorespond, X-Auto-Response-Suppress with
// All, AutoReply or OOF), list mail (List-Id, List-Unsubscribe, List-Post
// and the other RFC 2369 fields), bounces and reports (a null Return-Path,
// multipart/report, message/delivery-status), mail from programs
// (MAILER-DAEMON, postmaster, noreply, no-reply, do-not-reply), our own
// mail come back (OwnMailHeader), and mail whose From names no single
// sender. Field names are compared case-insensitively, values without
// comments and parameters.
func AutoReplyAllowed(req *mail.Request) (ok bool, reason string) {
	if req == nil || req.Headerless {
		return false, "the mail has no header"
	}
	for _, v := range append(req.HeaderValues("Auto-Submitted"), req.Loop.AutoSubmitted) {
		if t := fieldToken(v); t != "" && t != "no" {
			return false, "it is automatic mail (Auto-Submitted: " + t + ")"
		}
	}
	for _, v := range append(req.HeaderValues("Precedence"), req.Loop.Precedence) {
		switch t := fieldToken(v); t {
		case "bulk", "junk", "list", "auto_reply":
			return false, "it is bulk or list mail (Precedence: " + t + ")"
		}
	}
	if req.Loop.ListID != "" {
		return false, "it is list mail (List-Id)"
	}
	for _, name := range listFields {
		if len(req.HeaderValues(name)) > 0 {
			return false, "it is list mail (" + name + ")"
		}
	}
	for _, name := range autoReplyFields {
		if len(req.HeaderValues(name)) > 0 {
			return false, "it is an automatic answer (" + name + ")"
		}
	}
	for _, v := range req.HeaderValues("X-Auto-Response-Suppress") {
		for _, t := range strings.Split(v, ",") {
			switch t = strings.ToLower(fieldToken(t)); t {
			case "all", "autoreply", "oof":
				return false, "the sender asks for no automatic answer (X-Auto-Response-Suppress: " + t + ")"
			}
		}
	}
	if req.Loop.ReturnPathNull {
		return false, "it has a null sender (Return-Path: <>), as bounces do"
	}
	for _, v := range req.HeaderValues("Return-Path") {
		if strings.Join(strings.Fields(stripComments(v)), "") == "<>" {
			return false, "it has a null sender (Return-Path: <>), as bounces do"
		}
	}
	for _, v := range append(req.HeaderValues("Content-Type"), req.Loop.ContentType) {
		switch ct := fieldToken(v); ct {
		case "multipart/report", "message/delivery-status", "message/disposition-notification", "message/feedback-report":
			return false, "it is a delivery or read report (" + ct + ")"
		}
	}
	if req.FromAmbiguous() || req.From.Address == "" {
		return false, "its From header does not name one sender"
	}
	local, _, _ := strings.Cut(strings.ToLower(req.From.Address), "@")
	local, _, _ = strings.Cut(local, "+")
	local = strings.NewReplacer("-", "", "_", "", ".", "").Replace(local)
	for _, robot := range robotLocalParts {
		if strings.HasPrefix(local, robot) {
			return false, "it comes from a program (" + req.From.Address + "), not a person"
		}
	}
	return true, ""
}

// fieldToken returns the first token of a structured header field's
// value, lower case, without comments, parameters or white space:
// " Auto-Replied (vacation); x=1" is "auto-replied".
func fieldToken(v string) string {
	v = stripComments(v)
	v, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.Join(strings.Fields(v), ""))
}

// stripComments removes RFC 5322 comments (parenthesised, nested, with
// backslash escapes) from a header field's value.
func stripComments(v string) string {
	if !strings.Contains(v, "(") {
		return v
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
