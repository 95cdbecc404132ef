package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dirTestLoad loads a file from testdata and fails the test on error.
func dirTestLoad(t *testing.T, name string) *Directory {
	t.Helper()
	d, err := LoadDirectory(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("LoadDirectory(%s): %v", name, err)
	}
	return d
}

// dirTestIDs returns the ids of accounts, sorted.
func dirTestIDs(as []*Account) []string {
	ids := make([]string, 0, len(as))
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestDirectoryYAMLAndJSONLinesAgree(t *testing.T) {
	y := dirTestLoad(t, "accounts.yaml")
	j := dirTestLoad(t, "accounts.jsonl")
	if y.Len() != 8 || j.Len() != 8 {
		t.Fatalf("Len: yaml %d, jsonl %d, want 8 each", y.Len(), j.Len())
	}
	for _, id := range []string{"host-1", "acme", "buecher", "mueller", "dotted", "shared-1", "shared-2", "altaire"} {
		a, aok := y.Account(id)
		b, bok := j.Account(id)
		if !aok || !bok || !reflect.DeepEqual(a, b) {
			t.Errorf("Account(%q) differs:\nyaml  %+v %v\njsonl %+v %v", id, a, aok, b, bok)
		}
	}
	one := func(a *Account, ok bool) string {
		if !ok {
			return ""
		}
		return a.ID
	}
	for _, key := range []string{"ORD-10001", "cs-20002", "30003", "40004", "AcmeAdmin", "hostadmin", "a.b", "nope"} {
		if a, b := one(y.ByOrder(key)), one(j.ByOrder(key)); a != b {
			t.Errorf("ByOrder(%q): yaml %q, jsonl %q", key, a, b)
		}
		if a, b := one(y.ByUsername(key)), one(j.ByUsername(key)); a != b {
			t.Errorf("ByUsername(%q): yaml %q, jsonl %q", key, a, b)
		}
	}
	for _, key := range []string{"admin@acmecorp.example", "ops@host.example", "owner@bücher.example", "info@xn--mller-kva.example", "a.b+x@d.example", "one@shared.example"} {
		if a, b := dirTestIDs(y.ByAdminEmail(key)), dirTestIDs(j.ByAdminEmail(key)); !slices.Equal(a, b) {
			t.Errorf("ByAdminEmail(%q): yaml %q, jsonl %q", key, a, b)
		}
	}
	for _, key := range []string{"acmecorp.example", "acme-shop.example", "www.bücher.example", "müller.example", "shared.example", "d.example", "host.example", "acmecorp.co.uk"} {
		ya, ym := y.ByDomain(key)
		ja, jm := j.ByDomain(key)
		if !slices.Equal(dirTestIDs(ya), dirTestIDs(ja)) || ym != jm || len(ya) == 0 {
			t.Errorf("ByDomain(%q): yaml %q %q, jsonl %q %q", key, dirTestIDs(ya), ym, dirTestIDs(ja), jm)
		}
	}
}

func TestDirectoryCanonicalForm(t *testing.T) {
	for _, file := range []string{"accounts.yaml", "accounts.jsonl"} {
		d := dirTestLoad(t, file)
		tests := []struct {
			id      string
			admin   string
			domains []string
			orders  []Order
		}{
			{"acme", "admin@acmecorp.example", []string{"acmecorp.example", "acmecorp.co.uk"},
				[]Order{{"ORD-10001", "acme-shop.example", "ssl"}, {"cs-20002", "", "code-signing"}}},
			{"buecher", "owner@xn--bcher-kva.example", []string{"xn--bcher-kva.example"},
				[]Order{{"30003", "www.xn--bcher-kva.example", "smime"}}},
			{"mueller", "info@xn--mller-kva.example", []string{"xn--mller-kva.example"}, nil},
			{"dotted", "a.b+x@d.example", []string{"d.example"}, nil},
		}
		for _, tt := range tests {
			a, ok := d.Account(tt.id)
			if !ok {
				t.Errorf("%s: Account(%q) not found", file, tt.id)
				continue
			}
			if a.ID != tt.id || a.AdminEmail != tt.admin || !slices.Equal(a.Domains, tt.domains) || !slices.Equal(a.Orders, tt.orders) {
				t.Errorf("%s: Account(%q) = id %q admin %q domains %q orders %v, want admin %q domains %q orders %v",
					file, tt.id, a.ID, a.AdminEmail, a.Domains, a.Orders, tt.admin, tt.domains, tt.orders)
			}
		}
		if a, _ := d.Account("altaire"); a == nil || !a.DoNotReset {
			t.Errorf("%s: altaire should have do_not_reset", file)
		}
		if a, _ := d.Account("buecher"); a == nil || a.Partner != "host-1" || a.Username != "" {
			t.Errorf("%s: buecher = %+v, want partner host-1 and no username", file, a)
		}
		for _, id := range []string{"ACME", "acme ", "nobody", ""} {
			if a, ok := d.Account(id); ok {
				t.Errorf("%s: Account(%q) = %q, want not found (ids are exact)", file, id, a.ID)
			}
		}
	}
}

func TestDirectoryLookups(t *testing.T) {
	for _, file := range []string{"accounts.yaml", "accounts.jsonl"} {
		d := dirTestLoad(t, file)

		t.Run(file+"/ByOrder", func(t *testing.T) {
			for _, tt := range []struct{ number, want string }{
				{"ORD-10001", "acme"},
				{"ord-10001", "acme"},
				{"Ord-10001", "acme"},
				{"CS-20002", "acme"},
				{"cs-20002", "acme"},
				{"30003", "buecher"},
				{"40004", "shared-2"},
				{"ORD-1000", ""},
				{"ORD-100011", ""},
				{"10001", ""},
				{"", ""},
			} {
				a, ok := d.ByOrder(tt.number)
				got := ""
				if ok {
					got = a.ID
				}
				if got != tt.want {
					t.Errorf("ByOrder(%q) = %q, want %q", tt.number, got, tt.want)
				}
			}
		})

		t.Run(file+"/ByUsername", func(t *testing.T) {
			for _, tt := range []struct{ name, want string }{
				{"AcmeAdmin", "acme"},
				{"acmeadmin", "acme"},
				{"ACMEADMIN", "acme"},
				{"hostadmin", "host-1"},
				{"a.b", "dotted"},
				{"ab", ""},
				{"acme", ""}, // an id is no username
				{"", ""},     // accounts without username are not found by ""
			} {
				a, ok := d.ByUsername(tt.name)
				got := ""
				if ok {
					got = a.ID
				}
				if got != tt.want {
					t.Errorf("ByUsername(%q) = %q, want %q", tt.name, got, tt.want)
				}
			}
		})

		t.Run(file+"/ByAdminEmail", func(t *testing.T) {
			for _, tt := range []struct {
				addr string
				want []string
			}{
				{"admin@acmecorp.example", []string{"acme", "altaire"}},
				{"ADMIN@ACMECORP.EXAMPLE", []string{"acme", "altaire"}},
				{"  Admin@AcmeCorp.Example ", []string{"acme", "altaire"}},
				{"admin@acmecorp.example.", []string{"acme", "altaire"}},
				{"ops@host.example", []string{"host-1"}},
				// IDNA: Unicode on file, A-label asked, and the other way round.
				{"owner@xn--bcher-kva.example", []string{"buecher"}},
				{"owner@bücher.example", []string{"buecher"}},
				{"OWNER@BÜCHER.EXAMPLE", []string{"buecher"}},
				{"info@müller.example", []string{"mueller"}},
				{"info@MÜLLER.example", []string{"mueller"}},
				{"info@xn--mller-kva.example", []string{"mueller"}},
				// No stripping of +tags or dots.
				{"a.b+x@d.example", []string{"dotted"}},
				{"A.B+X@D.EXAMPLE", []string{"dotted"}},
				{"ab@d.example", nil},
				{"a.b@d.example", nil},
				{"ab+x@d.example", nil},
				{"a.b+y@d.example", nil},
				// Look-alikes and other domains.
				{"admin@аcmecorp.example", nil}, // Cyrillic а
				{"admin@xn--cmecorp-1fg.example", nil},
				{"admin@acmecorp.example.evil.test", nil},
				{"admin@mail.acmecorp.example", nil},
				{"Admin <admin@acmecorp.example>", nil},
				{"admin", nil},
				{"", nil},
			} {
				if got := dirTestIDs(d.ByAdminEmail(tt.addr)); !slices.Equal(got, tt.want) {
					t.Errorf("ByAdminEmail(%q) = %q, want %q", tt.addr, got, tt.want)
				}
			}
		})

		t.Run(file+"/ByDomain", func(t *testing.T) {
			for _, tt := range []struct {
				domain  string
				want    []string
				matched string
			}{
				{"acmecorp.example", []string{"acme"}, "acmecorp.example"},
				{"ACMECORP.EXAMPLE", []string{"acme"}, "acmecorp.example"},
				{"acmecorp.example.", []string{"acme"}, "acmecorp.example"},
				{"shop.acmecorp.example", []string{"acme"}, "acmecorp.example"},
				{"a.b.shop.acmecorp.example", []string{"acme"}, "acmecorp.example"},
				{"acmecorp.co.uk", []string{"acme"}, "acmecorp.co.uk"},
				{"www.acmecorp.co.uk", []string{"acme"}, "acmecorp.co.uk"},
				// Order domains are indexed too.
				{"acme-shop.example", []string{"acme"}, "acme-shop.example"},
				{"cdn.acme-shop.example", []string{"acme"}, "acme-shop.example"},
				// IDNA both ways.
				{"bücher.example", []string{"buecher"}, "xn--bcher-kva.example"},
				{"xn--bcher-kva.example", []string{"buecher"}, "xn--bcher-kva.example"},
				{"www.bücher.example", []string{"buecher"}, "www.xn--bcher-kva.example"},
				{"shop.BÜCHER.example", []string{"buecher"}, "xn--bcher-kva.example"},
				{"müller.example", []string{"mueller"}, "xn--mller-kva.example"},
				// A domain shared by two accounts returns both.
				{"shared.example", []string{"shared-1", "shared-2"}, "shared.example"},
				{"www.shared.example", []string{"shared-1", "shared-2"}, "shared.example"},
				// Look-alikes never match.
				{"acmecorp.example.evil.test", nil, ""},
				{"evil-acmecorp.example", nil, ""},
				{"acmecorp.example-evil.test", nil, ""},
				{"acmecorpexample", nil, ""},
				{"acmecorp.exampl", nil, ""},
				{"аcmecorp.example", nil, ""},                // Cyrillic а (U+0430)
				{"xn--cmecorp-1fg.example", nil, ""},         // its punycode form
				{"shop.xn--cmecorp-1fg.example", nil, ""},    // below the homoglyph
				{"acmecorp.co.uk.evil.test", nil, ""},        // look-alike of a .co.uk domain
				{"co.uk", nil, ""},                           // the public suffix itself
				{"example", nil, ""},                         // one label
				{"", nil, ""},                                //
				{"not a domain", nil, ""},                    //
				{"host.example.acmecorp.example.x", nil, ""}, //
			} {
				as, matched := d.ByDomain(tt.domain)
				got := dirTestIDs(as)
				if !slices.Equal(got, tt.want) || matched != tt.matched {
					t.Errorf("ByDomain(%q) = %q, %q; want %q, %q", tt.domain, got, matched, tt.want, tt.matched)
				}
			}
		})
	}
}

// dirTestErrCase is a bad directory and the error lines it must produce.
type dirTestErrCase struct {
	name string
	data string
	want []string // each must be a line of the error (prefix match)
}

func dirTestCheckErr(t *testing.T, file string, tt dirTestErrCase) {
	t.Helper()
	d, err := ParseDirectory(file, []byte(tt.data))
	if err == nil {
		t.Fatalf("ParseDirectory(%s) = %d accounts, nil error; want %q", tt.name, d.Len(), tt.want)
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range tt.want {
		match := func(l string) bool { return strings.HasPrefix(l, w) }
		if re, ok := strings.CutPrefix(w, "re:"); ok {
			match = regexp.MustCompile(re).MatchString
		}
		if !slices.ContainsFunc(lines, match) {
			t.Errorf("%s: error\n%s\nhas no line starting %q", tt.name, err, w)
		}
	}
}

func TestParseDirectoryYAMLErrors(t *testing.T) {
	const ok = "  - id: ok\n    colour: green\n    admin_email: ok@ok.example\n"
	tests := []dirTestErrCase{
		{"unknown colour", "accounts:\n" + ok + "  - id: a\n    colour: purple\n    admin_email: a@a.example\n",
			[]string{`a.yaml:5: colour: unknown colour "purple"`}},
		{"colour in upper case", "accounts:\n  - id: a\n    colour: Green\n    admin_email: a@a.example\n",
			[]string{`a.yaml:2: colour: unknown colour "Green"`}},
		{"unknown colour is not a directory colour", "accounts:\n  - id: a\n    colour: unknown\n    admin_email: a@a.example\n",
			[]string{`a.yaml:2: colour: unknown colour "unknown"`}},
		{"missing colour", "accounts:\n  - id: a\n    admin_email: a@a.example\n",
			[]string{`a.yaml:2: colour: missing`}},
		{"missing id", "accounts:\n" + ok + "  - colour: green\n    admin_email: a@a.example\n",
			[]string{`a.yaml:5: id: missing`}},
		{"blank id", "accounts:\n  - id: '  '\n    colour: green\n    admin_email: a@a.example\n",
			[]string{`a.yaml:2: id: missing`}},
		{"missing admin_email", "accounts:\n  - id: a\n    colour: green\n",
			[]string{`a.yaml:2: admin_email: missing`}},
		{"admin_email without @", "accounts:\n  - id: a\n    colour: green\n    admin_email: admin.a.example\n",
			[]string{`a.yaml:2: admin_email: invalid email address`}},
		{"admin_email with bad domain", "accounts:\n  - id: a\n    colour: green\n    admin_email: admin@localhost\n",
			[]string{`a.yaml:2: admin_email: invalid email address`}},
		{"admin_email with angle brackets", "accounts:\n  - id: a\n    colour: green\n    admin_email: <admin@a.example>\n",
			[]string{`a.yaml:2: admin_email: invalid email address`}},
		{"bad domain", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    domains: [a.example, -bad-.example]\n",
			[]string{`a.yaml:2: domains[1]: invalid domain`}},
		{"public suffix domain", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    domains: [co.uk]\n",
			[]string{`a.yaml:2: domains[0]: "co.uk" is a public suffix`}},
		{"public suffix order domain", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    orders: [{number: '12345', domain: co.uk}]\n",
			[]string{`a.yaml:2: orders[0].domain: "co.uk" is a public suffix`}},
		{"bad product", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    orders:\n      - {number: '12345', product: ssl}\n      - {number: '12346', product: tshirt}\n",
			[]string{`a.yaml:2: orders[1].product: unknown product "tshirt"`}},
		{"missing order number", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    orders: [{product: ssl}]\n",
			[]string{`a.yaml:2: orders[0].number: missing`}},
		{"unknown field", "accounts:\n" + ok + "  - id: a\n    colour: green\n    admin_email: a@a.example\n    phone: 123\n",
			[]string{`a.yaml:8: phone: unknown field`}},
		{"misspelt field", "accounts:\n  - id: a\n    color: green\n    admin_email: a@a.example\n",
			[]string{`a.yaml:3: color: unknown field`}},
		{"account not a mapping", "accounts:\n" + ok + "  - just a string\n",
			[]string{`a.yaml:5: want an account`}},
		{"duplicate id", "accounts:\n" + ok + "  - id: ok\n    colour: red\n    admin_email: b@b.example\n",
			[]string{`a.yaml:5: id: "ok" already used on line 2`}},
		{"duplicate order number", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    orders: [{number: ORD-1}]\n" +
			"  - id: b\n    colour: green\n    admin_email: b@b.example\n    orders: [{number: X-2}, {number: ord-1}]\n",
			[]string{`a.yaml:6: orders[1].number: "ord-1" already belongs to account "a" (line 2)`}},
		{"duplicate username", "accounts:\n  - id: a\n    colour: green\n    username: Bob\n    admin_email: a@a.example\n" +
			"  - id: b\n    colour: green\n    username: bob\n    admin_email: b@b.example\n",
			[]string{`a.yaml:6: username: "bob" already belongs to account "a" (line 2)`}},
		{"username with space", "accounts:\n  - id: a\n    colour: green\n    username: bob smith\n    admin_email: a@a.example\n",
			[]string{`a.yaml:2: username: must not contain white space`}},
		{"partner does not exist", "accounts:\n" + ok + "  - id: a\n    colour: blue\n    partner: nohost\n    admin_email: a@a.example\n",
			[]string{`a.yaml:5: partner: no account has id "nohost"`}},
		{"self partner", "accounts:\n" + ok + "  - id: a\n    colour: red\n    partner: a\n    admin_email: a@a.example\n",
			[]string{`a.yaml:5: partner: an account cannot be its own partner`}},
		{"several bad records all reported", "accounts:\n" +
			"  - id: a\n    colour: purple\n    admin_email: a@a.example\n" +
			"  - id: b\n    colour: green\n    admin_email: nope\n" +
			"  - id: c\n    colour: green\n    admin_email: c@c.example\n    domains: [co.uk]\n",
			[]string{`a.yaml:2: colour:`, `a.yaml:5: admin_email:`, `a.yaml:8: domains[0]:`}},
		{"empty file", "", []string{"a.yaml:"}},
		{"only a comment", "# nothing here\n", []string{"a.yaml:"}},
		{"top level is not accounts", "users:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n",
			[]string{`a.yaml:1: users: unknown field`}},
		{"top level key after accounts", "accounts:\n" + ok + "extra: 1\n",
			[]string{`a.yaml:5: extra: unknown field`}},
		{"top level is a list", "- id: a\n  colour: green\n  admin_email: a@a.example\n",
			[]string{`a.yaml:1: accounts: want a list`}},
		{"accounts is a mapping", "accounts:\n  id: a\n",
			[]string{`a.yaml:`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { dirTestCheckErr(t, "a.yaml", tt) })
	}
}

// YAML decoding errors (wrong type, syntax) must have the same
// "FILE:LINE: FIELD: problem" form as the other errors.
func TestParseDirectoryYAMLDecodeErrorFormat(t *testing.T) {
	const ok = "  - id: ok\n    colour: green\n    admin_email: ok@ok.example\n"
	tests := []struct {
		name, data string
		want       *regexp.Regexp
	}{
		{"wrong type", "accounts:\n" + ok + "  - id: a\n    colour: green\n    admin_email: a@a.example\n    domains: x\n",
			regexp.MustCompile(`^a\.yaml:8: domains: \S`)},
		{"wrong type in an order", "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n    orders:\n      - number: [1, 2]\n",
			regexp.MustCompile(`^a\.yaml:6: orders\[0\]\.number: \S`)},
		{"syntax error", "accounts:\n" + ok + "  - id: a\n   colour: [green\n",
			regexp.MustCompile(`^a\.yaml:\d+: \S`)},
	}
	var bugs []string
	for _, tt := range tests {
		_, err := ParseDirectory("a.yaml", []byte(tt.data))
		switch {
		case err == nil:
			t.Errorf("%s: no error", tt.name)
		case !tt.want.MatchString(err.Error()):
			bugs = append(bugs, fmt.Sprintf("%s: got %q, want match %s", tt.name, err, tt.want))
		}
	}
	if len(bugs) > 0 {
		t.Errorf("fixed bug regressed: YAML decode errors are formatted \"FILE: LINE: yaml message\" (decodeYAMLAccounts uses \"%%s: %%s\" with yamlError), without the field:\n%s", strings.Join(bugs, "\n"))
	}
}

// JSON Lines must reject what YAML rejects: mis-cased keys (encoding/json
// matched them case-insensitively) and a repeated key (yaml.v3 rejects it;
// a JSON decoder silently keeps one of the values).
func TestParseDirectoryJSONLinesStrictKeys(t *testing.T) {
	for _, tt := range []struct{ name, line, want string }{
		{"mis-cased key", `{"id": "a", "Colour": "green", "admin_email": "a@a.example"}`, "a.jsonl:1: Colour: unknown field"},
		{"mis-cased key 2", `{"ID": "a", "colour": "green", "ADMIN_EMAIL": "a@a.example"}`, "a.jsonl:1: "},
		{"repeated key", `{"id": "a", "colour": "purple", "colour": "green", "admin_email": "a@a.example"}`, "a.jsonl:1: colour: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yml := "accounts:\n  - " + strings.NewReplacer(`{`, ``, `}`, ``, `"`, ``, `, `, "\n    ").Replace(tt.line) + "\n"
			if _, err := ParseDirectory("a.yaml", []byte(yml)); err == nil {
				t.Fatalf("YAML accepts %q", yml)
			}
			d, err := ParseDirectory("a.jsonl", []byte(tt.line))
			if err == nil {
				t.Errorf("fixed bug regressed: JSON Lines accepts %s (%d account) while YAML rejects the same record", tt.line, d.Len())
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseDirectoryJSONLinesErrors(t *testing.T) {
	const ok = `{"id": "ok", "colour": "green", "admin_email": "ok@ok.example"}` + "\n"
	tests := []dirTestErrCase{
		{"unknown colour", ok + `{"id": "a", "colour": "purple", "admin_email": "a@a.example"}`,
			[]string{`a.jsonl:2: colour: unknown colour "purple"`}},
		{"missing id", ok + "\n" + `{"colour": "green", "admin_email": "a@a.example"}`,
			[]string{`a.jsonl:3: id: missing`}},
		{"missing admin_email", `{"id": "a", "colour": "green"}`,
			[]string{`a.jsonl:1: admin_email: missing`}},
		{"invalid admin_email", `{"id": "a", "colour": "green", "admin_email": "a@"}`,
			[]string{`a.jsonl:1: admin_email: invalid email address`}},
		{"bad domain", `{"id": "a", "colour": "green", "admin_email": "a@a.example", "domains": ["a..example"]}`,
			[]string{`a.jsonl:1: domains[0]: invalid domain`}},
		{"public suffix domain", `{"id": "a", "colour": "green", "admin_email": "a@a.example", "domains": ["a.example", "co.uk"]}`,
			[]string{`a.jsonl:1: domains[1]: "co.uk" is a public suffix`}},
		{"bad product", `{"id": "a", "colour": "green", "admin_email": "a@a.example", "orders": [{"number": "12345", "product": "SSL"}]}`,
			[]string{`a.jsonl:1: orders[0].product: unknown product "SSL"`}},
		{"unknown field", ok + ok[:len(ok)-2] + `, "phone": "123"}`,
			[]string{`a.jsonl:2: phone: unknown field`}},
		{"unknown field in an order", `{"id": "a", "colour": "green", "admin_email": "a@a.example", "orders": [{"number": "12345", "price": 5}]}`,
			[]string{`re:^a\.jsonl:1: (orders\[0\]\.)?price: unknown field`}},
		{"wrong JSON type", ok + ok + `{"id": "a", "colour": "green", "admin_email": "a@a.example", "domains": "x"}`,
			[]string{`re:^a\.jsonl:3: domains: want .+, got string`}},
		{"wrong JSON type in an order", `{"id": "a", "colour": "green", "admin_email": "a@a.example", "orders": [{"number": ["12345"]}]}`,
			[]string{`re:^a\.jsonl:1: orders(\[0\]|\.0)?\.number: want`}},
		{"malformed JSON", ok + `{"id": "a", "colour": "green",` + "\n" + ok,
			[]string{`a.jsonl:2: `}},
		{"two values on a line", ok + ok[:len(ok)-1] + ok,
			[]string{`a.jsonl:2: `}},
		{"not an object", ok + "[1, 2]\n",
			[]string{`a.jsonl:2: `}},
		{"duplicate id", ok + "\n\n" + ok,
			[]string{`a.jsonl:4: id: "ok" already used on line 1`}},
		{"duplicate order number", `{"id": "a", "colour": "green", "admin_email": "a@a.example", "orders": [{"number": "ORD-1"}]}` + "\n" +
			`{"id": "b", "colour": "green", "admin_email": "b@b.example", "orders": [{"number": "Ord-1"}]}`,
			[]string{`a.jsonl:2: orders[0].number: "Ord-1" already belongs to account "a" (line 1)`}},
		{"duplicate username", `{"id": "a", "colour": "green", "username": "Bob", "admin_email": "a@a.example"}` + "\n" +
			`{"id": "b", "colour": "green", "username": "BOB", "admin_email": "b@b.example"}`,
			[]string{`a.jsonl:2: username: "BOB" already belongs to account "a" (line 1)`}},
		{"partner does not exist", ok + `{"id": "a", "colour": "red", "partner": "reseller", "admin_email": "a@a.example"}`,
			[]string{`a.jsonl:2: partner: no account has id "reseller"`}},
		{"self partner", `{"id": "a", "colour": "red", "partner": "a", "admin_email": "a@a.example"}`,
			[]string{`a.jsonl:1: partner: an account cannot be its own partner`}},
		{"several bad records all reported", `{"id": "a", "colour": ` + "\n" +
			`{"id": "b", "colour": "purple", "admin_email": "b@b.example"}` + "\n" +
			`{"id": "c", "colour": "green", "admin_email": "c@c.example", "x": 1}` + "\n" +
			`{"id": "d", "colour": "green", "admin_email": "d@d.example", "domains": ["co.uk"]}` + "\n",
			[]string{"a.jsonl:1: ", "a.jsonl:2: colour:", "a.jsonl:3: x: unknown field", "a.jsonl:4: domains[0]:"}},
		{"blank and CRLF lines keep line numbers", ok + "\r\n   \r\n\t\n" + `{"id": "a", "colour": "purple", "admin_email": "a@a.example"}` + "\r\n",
			[]string{`a.jsonl:5: colour: unknown colour "purple"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { dirTestCheckErr(t, "a.jsonl", tt) })
	}
}

// A JSON type error names the field as the other errors do ("orders[0].number")
// and says what it wanted, without echoing the rest of the line.
func TestParseDirectoryJSONTypeErrorMessage(t *testing.T) {
	var bugs []string
	for _, tt := range []struct {
		line string
		want *regexp.Regexp
	}{
		{`{"id": "a", "colour": "green", "admin_email": "a@a.example", "domains": "x"}`, regexp.MustCompile(`^a\.jsonl:1: domains: want [^{}"]+$`)},
		{`{"id": "a", "colour": "green", "admin_email": "a@a.example", "orders": [{"number": ["1"]}]}`, regexp.MustCompile(`^a\.jsonl:1: orders\[0\]\.number: want [^{}"]+$`)},
		{`{"id": "a", "colour": "green", "admin_email": "a@a.example", "do_not_reset": "yes"}`, regexp.MustCompile(`^a\.jsonl:1: do_not_reset: want [^{}"]+$`)},
		{`{"id": 7, "colour": "green", "admin_email": "a@a.example"}`, regexp.MustCompile(`^a\.jsonl:1: id: want [^{}"]+$`)},
		{`{"id": "a", "colour": "green", "admin_email": "a@a.example", "domains": ["a.example", 5]}`, regexp.MustCompile(`^a\.jsonl:1: domains\[1\]: want [^{}"]+$`)},
	} {
		_, err := ParseDirectory("a.jsonl", []byte(tt.line))
		if err == nil {
			t.Errorf("%s: no error", tt.line)
			continue
		}
		if !tt.want.MatchString(err.Error()) {
			bugs = append(bugs, fmt.Sprintf("got %q, want match %s", err, tt.want))
		}
	}
	if len(bugs) > 0 {
		t.Errorf("fixed bug regressed: JSON type errors do not read \"FIELD: want TYPE\":\n%s", strings.Join(bugs, "\n"))
	}
}

func TestParseDirectoryJSONLinesBlankLines(t *testing.T) {
	data := "\n\n" + `{"id": "a", "colour": "green", "admin_email": "a@a.example"}` + "\n\n  \n" +
		`{"id": "b", "colour": "red", "partner": "a", "admin_email": "b@b.example"}` + "\n\n"
	d, err := ParseDirectory("a.jsonl", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 {
		t.Fatalf("Len = %d, want 2", d.Len())
	}
	if b, ok := d.Account("b"); !ok || b.Partner != "a" {
		t.Errorf("Account(b) = %+v, %v", b, ok)
	}
}

func TestParseDirectoryByteOrderMark(t *testing.T) {
	const bom = "\uFEFF"
	for _, tt := range []struct{ name, data string }{
		{"a.yaml", bom + "accounts:\n  - id: a\n    colour: green\n    admin_email: a@a.example\n"},
		{"a.jsonl", bom + `{"id": "a", "colour": "green", "admin_email": "a@a.example"}` + "\n"},
	} {
		d, err := ParseDirectory(tt.name, []byte(tt.data))
		if err != nil {
			if tt.name == "a.jsonl" {
				t.Errorf("fixed bug regressed: a JSON Lines file that starts with a byte order mark is detected as JSON Lines but its first line fails: %v", err)
			}
			t.Errorf("%s with a byte order mark: %v", tt.name, err)
			continue
		}
		if d.Len() != 1 {
			t.Errorf("%s: Len = %d, want 1", tt.name, d.Len())
		}
	}
}

// dirTestBigJSONL writes n JSON lines, with a blank line every 97 lines; bad
// replaces line badLine (1-based) when badLine > 0.
func dirTestBigJSONL(t *testing.T, n, badLine int, bad string) string {
	t.Helper()
	var b strings.Builder
	for line := 1; line <= n; line++ {
		switch {
		case line == badLine:
			b.WriteString(bad)
		case line%97 == 0:
		default:
			fmt.Fprintf(&b, `{"id": "acct-%d", "colour": "green", "username": "user%d", "admin_email": "admin%d@example.com", "domains": ["d%d.example.com"], "orders": [{"number": "ORD-%06d", "product": "ssl"}]}`,
				line, line, line, line, line)
		}
		b.WriteByte('\n')
	}
	path := filepath.Join(t.TempDir(), "big.jsonl")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDirectoryBigJSONLines(t *testing.T) {
	const n = 5000
	t.Run("good", func(t *testing.T) {
		d, err := LoadDirectory(dirTestBigJSONL(t, n, 0, ""))
		if err != nil {
			t.Fatal(err)
		}
		if want := n - n/97; d.Len() != want {
			t.Fatalf("Len = %d, want %d", d.Len(), want)
		}
		for _, line := range []int{1, 2, 96, 98, 2500, 4999, 5000} {
			a, ok := d.ByOrder(fmt.Sprintf("ord-%06d", line))
			if !ok || a.ID != fmt.Sprintf("acct-%d", line) {
				t.Errorf("ByOrder(ord-%06d) = %v, %v", line, a, ok)
			}
			if as, _ := d.ByDomain(fmt.Sprintf("www.d%d.example.com", line)); len(as) != 1 || as[0].ID != fmt.Sprintf("acct-%d", line) {
				t.Errorf("ByDomain(www.d%d.example.com) = %v", line, dirTestIDs(as))
			}
		}
	})
	for _, tt := range []struct {
		name    string
		badLine int
		bad     string
		want    string
	}{
		{"bad colour near the end", 4987, `{"id": "x", "colour": "purple", "admin_email": "x@x.example"}`,
			`big.jsonl:4987: colour: unknown colour "purple"`},
		{"malformed line near the end", 4993, `{"id": "x", "colour": `,
			`big.jsonl:4993: `},
		{"unknown field in the middle", 2771, `{"id": "x", "colour": "green", "admin_email": "x@x.example", "zip": 1}`,
			`big.jsonl:2771: zip: unknown field`},
		{"duplicate id on the last line", 5000, `{"id": "acct-3", "colour": "green", "admin_email": "x@x.example"}`,
			`big.jsonl:5000: id: "acct-3" already used on line 3`},
		{"duplicate order number", 4001, `{"id": "x", "colour": "green", "admin_email": "x@x.example", "orders": [{"number": "ORD-000002"}]}`,
			`big.jsonl:4001: orders[0].number: "ORD-000002" already belongs to account "acct-2" (line 2)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := dirTestBigJSONL(t, n, tt.badLine, tt.bad)
			_, err := LoadDirectory(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.TrimPrefix(err.Error(), filepath.Dir(path)+string(filepath.Separator))
			if !strings.HasPrefix(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error = %q, want exactly one line starting %q", err, tt.want)
			}
		})
	}
}

// dirTestMaxReported is the documented cap on reported load errors.
const dirTestMaxReported = 20

func TestParseDirectoryErrorCap(t *testing.T) {
	var yml, jsonl, malformed strings.Builder
	yml.WriteString("accounts:\n")
	for i := 1; i <= 27; i++ {
		fmt.Fprintf(&yml, "  - id: a%d\n    colour: purple\n    admin_email: a@a.example\n", i)
		fmt.Fprintf(&jsonl, `{"id": "a%d", "colour": "purple", "admin_email": "a@a.example"}`+"\n", i)
		fmt.Fprintf(&malformed, `{"id": "a%d", "colour": `+"\n", i)
	}
	for _, tt := range []struct {
		name, data string
		first      string
		last       string
	}{
		{"a.yaml", yml.String(), "a.yaml:2: colour:", "a.yaml:59: colour:"},
		{"a.jsonl", jsonl.String(), "a.jsonl:1: colour:", "a.jsonl:20: colour:"},
		{"m.jsonl", malformed.String(), "m.jsonl:1: ", "m.jsonl:20: "},
	} {
		_, err := ParseDirectory(tt.name, []byte(tt.data))
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != dirTestMaxReported+1 {
			t.Errorf("%s: %d error lines, want %d:\n%s", tt.name, len(lines), dirTestMaxReported+1, err)
			continue
		}
		if !strings.HasPrefix(lines[0], tt.first) || !strings.HasPrefix(lines[dirTestMaxReported-1], tt.last) {
			t.Errorf("%s: first %q last %q, want prefixes %q and %q", tt.name, lines[0], lines[dirTestMaxReported-1], tt.first, tt.last)
		}
		if got := lines[dirTestMaxReported]; got != "... and 7 more" {
			t.Errorf("%s: last line %q, want %q", tt.name, got, "... and 7 more")
		}
	}
	// Exactly the cap: no "... and" line.
	var exact strings.Builder
	for i := 1; i <= dirTestMaxReported; i++ {
		fmt.Fprintf(&exact, `{"id": "a%d", "colour": "purple", "admin_email": "a@a.example"}`+"\n", i)
	}
	_, err := ParseDirectory("e.jsonl", []byte(exact.String()))
	if err == nil || strings.Contains(err.Error(), "... and") || strings.Count(err.Error(), "\n") != dirTestMaxReported-1 {
		t.Errorf("exactly %d errors: got %v", dirTestMaxReported, err)
	}
}

func TestLoadDirectoryMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-accounts.yaml")
	d, err := LoadDirectory(path)
	if err == nil {
		t.Fatalf("LoadDirectory(missing) = %v, nil", d)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %q", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}
