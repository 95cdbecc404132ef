package rules

import (
	"errors"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

func TestCheckReply(t *testing.T) {
	p := DefaultPolicy()
	acct := &accounts.Account{ID: "A-1001", AdminEmail: "admin@acme.example", Username: "acmeadmin",
		Orders: []accounts.Order{{Number: "5550001"}, {Number: "ORD-77812"}}}
	tests := []struct {
		name, text, to string
		acct           *accounts.Account
		err            error
		says           string // a part of the error
	}{
		{"plain info", "Re: help\nPlease write from the admin address.", "hans@example.com", acct, nil, ""},
		{"info without an account", "Re: help\nPlease write from the admin address.", "hans@example.com", nil, nil, ""},
		{"details to the admin", "Re: help\nThe username of A-1001 is acmeadmin; orders 5550001 and ORD-77812.", "admin@acme.example", acct, nil, ""},
		{"details to the admin in another case", "Re: x\nAccount A-1001.", "Admin@ACME.example", acct, nil, ""},
		{"account id to the sender", "Re: x\nYour account A-1001 is fine.", "hans@example.com", acct, ErrReplyAccountDetails, "the account's id"},
		{"admin address to the sender", "Re: x\nWrite from ADMIN@acme.example.", "hans@example.com", acct, ErrReplyAccountDetails, "the admin address"},
		{"username to the sender", "Re: x\nYour login is AcmeAdmin.", "hans@example.com", acct, ErrReplyAccountDetails, "the username"},
		{"order number to the sender", "Re: x\nAbout order #ORD-77812.", "hans@example.com", acct, ErrReplyAccountDetails, "an order number"},
		{"several details", "Re: 5550001\nacmeadmin", "hans@example.com", acct, ErrReplyAccountDetails, "the username, an order number"},
		{"an order number inside a longer one", "Re: x\nTicket 55500012.", "hans@example.com", acct, nil, ""},
		{"a username inside a word", "Re: x\nacmeadmins", "hans@example.com", acct, nil, ""},
		{"a password", "Re: x\nYour new password: Tr0ub4dor&3", "admin@acme.example", acct, ErrReplySecret, "line 2"},
		{"a password in German", "AW: x\nHallo,\nIhr Passwort lautet Sommer2026!", "admin@acme.example", acct, ErrReplySecret, "line 3"},
		{"a password on the line below its label", "Re: x\nPassword\nhunter2", "admin@acme.example", acct, ErrReplySecret, "password"},
		{"a private key", "Re: x\n-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n", "admin@acme.example", nil, ErrReplySecret, "a private key on line 2"},
		{"a harmless password sentence", "Re: x\nWe never ask for your password.", "hans@example.com", acct, nil, ""},
		{"a forgotten password", "Re: x\nYour password is forgotten? Use the link.", "hans@example.com", acct, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckReply(tt.text, tt.acct, tt.to)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("CheckReply() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("CheckReply() = %v, want %v saying %q", err, tt.err, tt.says)
			}
			for _, secret := range []string{"Tr0ub4dor", "Sommer2026", "hunter2", "MIIB"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error echoes the secret: %v", err)
				}
			}
		})
	}
}
