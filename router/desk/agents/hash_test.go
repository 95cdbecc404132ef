package agents

import (
	"errors"
	"strings"
	"testing"
)

// TestHashVerify: a hash verifies its password and no other, in the PHC
// format with OWASP's parameters, salted afresh each time.
func TestHashVerify(t *testing.T) {
	const pw = "correct horse battery"
	h, err := HashPassword(pw, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q: want the PHC format with m=19456,t=2,p=1", h)
	}
	for _, tt := range []struct {
		password string
		want     bool
	}{
		{pw, true},
		{pw + " ", false},
		{"Correct horse battery", false},
		{"", false},
	} {
		ok, err := VerifyPassword(h, tt.password)
		if err != nil || ok != tt.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tt.password, ok, err, tt.want)
		}
	}
	h2, err := HashPassword(pw, DefaultParams())
	if err != nil || h2 == h {
		t.Errorf("two hashes of one password: %q, %q, %v: want different salts", h, h2, err)
	}
	if _, err := HashPassword(pw, Params{Memory: 1024, Time: 1, Threads: 1}); !errors.Is(err, ErrBadHash) {
		t.Errorf("weak parameters: %v, want ErrBadHash", err)
	}
}

// TestHashTampered: a hash string changed in any part is refused with an
// error saying which part, not holding the hash; none verifies.
func TestHashTampered(t *testing.T) {
	const pw = "correct horse battery"
	good, err := HashPassword(pw, DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=…, salt, hash
	join := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for _, tt := range []struct {
		name, hash, want string
	}{
		{"empty", "", "want $argon2id$"},
		{"bcrypt", "$2y$10$abcdefghijklmnopqrstuuOrhLTxfbr2zbSyBlM0vG8vYpvRgmrO", "want $argon2id$"},
		{"argon2i", join(1, "argon2i"), "algorithm is not argon2id"},
		{"version", join(2, "v=16"), "version is not v=19"},
		{"weak", join(3, "m=1024,t=1,p=1"), "weaker than OWASP"},
		{"huge memory", join(3, "m=4194304,t=2,p=1"), "over the limit"},
		{"many passes", join(3, "m=19456,t=1000,p=1"), "passes t=1000"},
		{"threads", join(3, "m=19456,t=2,p=300"), "threads p=300"},
		{"param order", join(3, "t=2,m=19456,p=1"), "m=…,t=…,p=…"},
		{"param junk", join(3, "m=19456,t=2,p=1x"), "in decimal"},
		{"leading zero", join(3, "m=019456,t=2,p=1"), "in decimal"},
		{"salt not base64", join(4, parts[4][:10]+"!"+parts[4][11:]), "salt is not"},
		{"salt short", join(4, "c2FsdA"), "salt is not"},
		{"hash padded", join(5, parts[5]+"="), "hash is not"},
		{"hash short", join(5, parts[5][:8]), "hash is not"},
		{"extra part", good + "$x", "want $argon2id$"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.hash, pw)
			if ok || !errors.Is(err, ErrBadHash) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("VerifyPassword = %v, %v; want ErrBadHash saying %q", ok, err, tt.want)
			}
			if strings.Contains(err.Error(), parts[4]) || strings.Contains(err.Error(), parts[5][:8]) {
				t.Errorf("error %q holds the hash", err)
			}
			if CheckHash(tt.hash) == nil {
				t.Error("CheckHash accepted it")
			}
		})
	}
	// A changed hash byte parses but does not verify.
	flipped := join(5, "A"+parts[5][1:])
	if flipped == good {
		flipped = join(5, "B"+parts[5][1:])
	}
	if ok, err := VerifyPassword(flipped, pw); ok || err != nil {
		t.Errorf("changed hash: %v, %v; want false, nil", ok, err)
	}
}
