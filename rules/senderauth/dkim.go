package senderauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// Resolver looks up DNS TXT records. *net.Resolver is one; tests serve
// keys from memory.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// DKIMVerifier checks the DKIM signatures of raw messages (RFC 6376) with
// go-msgauth. It only reports what each signature says; whether a passing
// signature vouches for the From address (alignment) is the policy's call.
type DKIMVerifier struct {
	// Resolver serves the public keys; nil means the system resolver.
	Resolver Resolver
	// Timeout bounds each key lookup; zero means 5 seconds.
	Timeout time.Duration
	// MaxSignatures caps the signatures checked in one message, so that a
	// mail cannot make us do unbounded work; zero means 5.
	MaxSignatures int
}

// DKIM results of a signature (RFC 8601 section 2.7.1).
const (
	DKIMPass      = "pass"
	DKIMFail      = "fail"      // the signature does not verify, or has l=
	DKIMPermError = "permerror" // malformed, no key, From not signed, expired
	DKIMTempError = "temperror" // the key could not be fetched now: try later
)

// DKIMSignature is the outcome of one signature of a message.
type DKIMSignature struct {
	Domain     string // d=
	Identifier string // i=
	Result     string
	Reason     string // why it did not pass
}

// Verify checks the signatures of the raw message read from r. The error is
// non-nil only when reading r fails; every verdict on the message itself is
// in the results, one per signature checked, in header order.
//
// It reads r once, in time linear in its length: go-msgauth is given only
// the header fields that the signatures checked hash, absurdly folded ones
// unfolded, and the body up to an absurd run of line breaks. A signature
// that would take more than the bounds allow (see maxDKIMHeaderBytes and
// the others) is reported as permerror with the bound it broke.
func (v *DKIMVerifier) Verify(ctx context.Context, r io.Reader) ([]DKIMSignature, error) {
	resolver := v.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	max := v.MaxSignatures
	if max <= 0 {
		max = 5
	}
	lookup := func(name string) ([]string, error) {
		lctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		txt, err := resolver.LookupTXT(lctx, name)
		if err != nil && isTemporary(err, lctx) {
			// go-msgauth tells a temporary failure by net.Error.Temporary.
			why := "timed out"
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) {
				why = dnsErr.Err
			}
			return nil, &net.DNSError{Err: why, Name: name, IsTemporary: true, IsTimeout: lctx.Err() != nil}
		}
		return txt, err
	}
	src := &stickyReader{r: r}
	br := bufio.NewReaderSize(src, 32<<10)
	out := verifyMessage(br, max, lookup)
	io.Copy(io.Discard, br) // go-msgauth may stop early: a failing source must still show
	if src.err != nil {
		return nil, fmt.Errorf("verify DKIM: %w", src.err)
	}
	return out, nil
}

// verifyMessage checks the first max signatures of the message read from
// br with go-msgauth, giving it what planDKIM chose.
func verifyMessage(br *bufio.Reader, max int, lookup func(string) ([]string, error)) []DKIMSignature {
	plan, ok := readPlan(br, max)
	if !ok {
		return nil // no header: no signature can be checked
	}
	var verifications []*dkim.Verification
	body := &lineBreakLimiter{r: br, max: maxLineBreakRun}
	if plan.verify > 0 {
		var err error
		msg := io.MultiReader(bytes.NewReader(plan.header), body)
		verifications, err = dkim.VerifyWithOptions(msg, &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: plan.verify})
		if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
			return nil // only a failing read gets here, and Verify reports that
		}
		io.Copy(io.Discard, body) // to see all of the body's line breaks
	}
	out := make([]DKIMSignature, 0, len(plan.sigs))
	for _, sig := range plan.sigs {
		s := DKIMSignature{Domain: strings.ToLower(sig.domain), Identifier: sig.identifier, Result: DKIMPermError, Reason: sig.problem}
		switch {
		case sig.problem != "":
		case len(verifications) == 0: // go-msgauth found fewer signatures than planned
			s.Reason = "dkim: signature not checked"
		default:
			s = result(verifications[0])
			verifications = verifications[1:]
			if sig.override != "" {
				s.Result, s.Reason = DKIMPermError, sig.override
			}
			if body.over {
				s.Result = DKIMPermError
				s.Reason = fmt.Sprintf("dkim: body has more than %d line breaks (CR or LF bytes) in a row: not verified", maxLineBreakRun)
			}
		}
		out = append(out, s)
	}
	return out
}

// readPlan reads the header of a message from br and plans its
// verification; ok is false when the message has no header.
func readPlan(br *bufio.Reader, max int) (p dkimPlan, ok bool) {
	h, ok := readDKIMHeader(br)
	if !ok {
		return p, false
	}
	return planDKIM(&h, max), true
}

// result is what go-msgauth's verification says of a signature.
func result(ver *dkim.Verification) DKIMSignature {
	s := DKIMSignature{Domain: strings.ToLower(ver.Domain), Identifier: ver.Identifier, Result: DKIMPass}
	switch e := ver.Err; {
	case e == nil:
	case dkim.IsTempFail(e):
		s.Result, s.Reason = DKIMTempError, e.Error()
	case dkim.IsPermFail(e):
		s.Result, s.Reason = DKIMPermError, e.Error()
	default:
		s.Result, s.Reason = DKIMFail, e.Error()
	}
	return s
}

// isTemporary reports whether a lookup error may go away by itself: a
// timeout, a server failure, a cancelled lookup. A missing record is no
// temporary error.
func isTemporary(err error, ctx context.Context) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return !dnsErr.IsNotFound && (dnsErr.IsTemporary || dnsErr.IsTimeout)
	}
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)
}

// stickyReader remembers the first error of r other than io.EOF, so that
// a failing source is never taken for a malformed message, and never reads
// r again after it (an IMAP literal must not be read once its connection
// failed).
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}
