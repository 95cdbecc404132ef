package answer

import (
	"errors"
	"testing"
)

func TestRecipient(t *testing.T) {
	tests := []struct {
		name                string
		kind                Kind
		admin, sender, want string
		err                 error // errors.Is; nil with want "" means any error
	}{
		{"reset goes to the admin", KindReset, "admin@acme.example", "eve@evil.example", "admin@acme.example", nil},
		{"reset to the admin when the admin wrote", KindReset, "admin@acme.example", "admin@acme.example", "admin@acme.example", nil},
		{"reset in canonical form", KindReset, "Admin@ACME.example", "x@y.example", "admin@acme.example", nil},
		{"reset without an admin address", KindReset, "", "hans@acme.example", "", ErrNoAdminAddress},
		{"reset to an invalid admin address", KindReset, "not an address", "hans@acme.example", "", nil},
		{"info goes to the sender", KindInfo, "admin@acme.example", "hans@acme.example", "hans@acme.example", nil},
		{"info without an account", KindInfo, "", "Hans@Example.COM", "hans@example.com", nil},
		{"info without a sender", KindInfo, "admin@acme.example", "", "", ErrNoSender},
		{"info to an invalid sender", KindInfo, "", "hans@", "", ErrNoSender},
		{"info to a look-alike domain form", KindInfo, "", "hans@ＡＣＭＥ.example", "", ErrNoSender},
		{"unknown kind", Kind("other"), "admin@acme.example", "hans@acme.example", "", nil},
		{"empty kind", "", "admin@acme.example", "hans@acme.example", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Recipient(tt.kind, tt.admin, tt.sender)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("Recipient() = %q, %v, want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || got != "" {
				t.Fatalf("Recipient() = %q, %v, want an error", got, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
		})
	}
}
