package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testAccounts is a small account directory with every shape the
// generator looks for: a partner and its customer, an account with orders
// and a code-signing order, one without orders or domains.
const testAccounts = `accounts:
  - id: WH-1
    colour: green
    name: HostingCo
    username: hostingco
    admin_email: certs@hostingco.example
    domains: [hostingco.example]
  - id: B-1
    colour: blue
    name: Bakery Blue
    admin_email: owner@bakery-blue.example
    domains: [bakery-blue.example]
    partner: WH-1
    orders: [{number: "4100001", domain: bakery-blue.example, product: ssl}]
  - id: G-1
    colour: green
    name: Acme Corp
    username: acmeadmin
    admin_email: admin@acmecorp.example
    domains: [acmecorp.example, acme.example]
    orders: [{number: "4500001", domain: acmecorp.example, product: ssl},
             {number: "4500002", domain: acmecorp.example, product: code-signing}]
  - id: P-1
    colour: pink
    name: Pinkerton Labs
    admin_email: pki@pinkerton.example
`

// generatedMailsSHA256 is the SHA-256 of the first 300 mails and a 64 KiB
// big mail that seed 1 makes with testAccounts, recorded from the
// generator whose texts were Go code (before deploy/bench/texts.yaml).
const generatedMailsSHA256 = "1eb56ce588d23ce7d6b7333a02df961ed6e1e4e234cb7467df5a79b9a1935a9c"

// TestGeneratedMailsUnchanged checks that the generator makes the same
// mails from the same seed as it did: benchmark runs are compared with one
// another only over the same mailbox.
func TestGeneratedMailsUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(path, []byte(testAccounts), 0o600); err != nil {
		t.Fatal(err)
	}
	accounts, err := loadAccounts(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGenerator(1, accounts)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	langs, kinds := map[string]int{}, map[string]int{}
	for i := range 300 {
		m := g.mail("bench", i)
		fmt.Fprintf(h, "mail %d: %d bytes\n", i, len(m.raw))
		h.Write(m.raw)
		langs[m.lang]++
		kinds[m.kind]++
	}
	fmt.Fprintf(h, "big mail\n")
	if _, err := g.bigMail(h, 300, 64<<10); err != nil {
		t.Fatal(err)
	}
	if len(langs) != len(g.langs) || len(kinds) != 4 {
		t.Errorf("the mails are in %d languages of %d and of %d kinds of 4: the digest does not cover every text", len(langs), len(g.langs), len(kinds))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != generatedMailsSHA256 {
		t.Errorf("the first 300 mails of seed 1 have SHA-256 %s, want %s: the generator or its texts changed", got, generatedMailsSHA256)
	}
}
