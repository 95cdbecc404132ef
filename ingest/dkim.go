package ingest

import (
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
	src := &sourceReader{r: r}
	verifications, err := dkim.VerifyWithOptions(src, &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: max})
	io.Copy(io.Discard, src) // go-msgauth may stop early: a failing source must still show
	if src.err != nil {
		return nil, fmt.Errorf("verify DKIM: %w", src.err)
	}
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		// The message itself is malformed where go-msgauth reads it (its
		// header): no signature can be checked.
		return nil, nil
	}
	out := make([]DKIMSignature, 0, len(verifications))
	for _, ver := range verifications {
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
		out = append(out, s)
	}
	return out, nil
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
