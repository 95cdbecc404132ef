package senderauth

import (
	"strings"
	"testing"
)

func TestSenderAuthCheck(t *testing.T) {
	for _, tt := range []struct {
		auth Config
		err  string
	}{
		{Config{}, ""},
		{Config{Mode: ModeDKIM}, ""},
		{Config{Mode: ModeResults, TrustedAuthservIDs: []string{"mx"}}, ""},
		{Config{Mode: "spf"}, `mode: "spf" is not one of`},
		{Config{Mode: ModeResults}, "trusted_authserv_ids: mode authentication-results needs"},
		{Config{Mode: ModeBoth}, "trusted_authserv_ids"},
		{Config{Mode: ModeDKIM, Alignment: "loose"}, `alignment: "loose"`},
	} {
		err := tt.auth.Check()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: Check() = %v, want %q", tt.auth, err, tt.err)
		}
	}
}
