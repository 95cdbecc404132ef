package ingest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestDKIMVerifierContract: Verify fails only when its reader does; a
// message without signatures or without a readable header has none.
func TestDKIMVerifierContract(t *testing.T) {
	v := DKIMVerifier{Resolver: noResolver{}}
	for _, tt := range []struct {
		name string
		raw  string
	}{
		{"no signature", "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"},
		{"no header", "\x00\x01 not a message"},
		{"empty", ""},
	} {
		sigs, err := v.Verify(context.Background(), strings.NewReader(tt.raw))
		if err != nil || len(sigs) != 0 {
			t.Errorf("%s: Verify = %v, %v; want no signature, no error", tt.name, sigs, err)
		}
	}
	broken := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("From: a@b.example\r\nDKIM-Signature: v=1; a=rsa-sha256; d=b.example; s=s; h=from; bh=x; b=y\r\n\r\n"), iotest.ErrReader(broken))
	if _, err := v.Verify(context.Background(), r); !errors.Is(err, broken) {
		t.Errorf("Verify with a failing reader = %v, want %v", err, broken)
	}
	sigs, err := v.Verify(context.Background(), strings.NewReader("From: a@b.example\r\nDKIM-Signature: v=1; a=rsa-sha256; d=B.Example; s=s; h=from; bh=x; b=y\r\n\r\nbody\r\n"))
	if err != nil || len(sigs) != 1 || sigs[0].Result != DKIMPermError || sigs[0].Domain != "b.example" || sigs[0].Reason == "" {
		t.Errorf("signature without a key: %+v, %v", sigs, err)
	}
}

type noResolver struct{}

func (noResolver) LookupTXT(context.Context, string) ([]string, error) {
	return nil, errors.New("no such host")
}
