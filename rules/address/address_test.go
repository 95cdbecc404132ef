package address

import (
	"slices"
	"strings"
	"testing"
)

// TestCanonicalDomain: a domain a mail claims equals an account's domain
// only when it needs no IDNA mapping beyond ASCII lower-casing.
func TestCanonicalDomain(t *testing.T) {
	const mapping = "not a host name without IDNA mapping"
	tests := []struct {
		in, want string
		err      string // substring of the error; "" for none
	}{
		{"acmecorp.example", "acmecorp.example", ""},
		{"AcmeCorp.Example", "acmecorp.example", ""},
		{"shop.acmecorp.example", "shop.acmecorp.example", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"XN--BCHER-KVA.Example", "xn--bcher-kva.example", ""},
		{"BüCHER.EXAMPLE", "xn--bcher-kva.example", ""}, // only the ASCII letters were upper case
		{"école.example", "xn--cole-9oa.example", ""},
		{"faß.example", "xn--fa-hia.example", ""},
		{"日本語.jp", "xn--wgv71a119e.jp", ""},
		{"аcmecorp.example", "xn--cmecorp-1fg.example", ""}, // Cyrillic а: another name

		// Every form that needs mapping is no domain to compare.
		{"BÜCHER.EXAMPLE", "", mapping},            // non-ASCII upper case
		{"e\u0301cole.example", "", mapping},       // NFD
		{"ａｃｍｅｃｏｒｐ.example", "", mapping},          // fullwidth
		{"\U0001d41acmecorp.example", "", mapping}, // mathematical bold a
		{"acmecorp\u3002example", "", mapping},     // ideographic full stop
		{"acme\u200bcorp.example", "", mapping},    // zero-width space
		{"acme\u00adcorp.example", "", mapping},    // soft hyphen
		{"acme\u2060corp.example", "", mapping},    // word joiner
		{"acme\ufeffcorp.example", "", mapping},    // zero-width no-break space
		{"\ufb00.example", "", mapping},            // ligature ff
		{"  acmecorp.example", "", mapping},
		{"acmecorp.example.", "", "bad label"}, // a trailing dot is a mapping too
		{"", "", "empty domain"},
		{"example", "", "want at least two labels"},
		{"under_score.example", "", "invalid domain"},
		{"xn--999999999999.example", "", "bad punycode label"},
	}
	for _, tt := range tests {
		got, err := StrictDomain(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("StrictDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("StrictDomain(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
		}
		if tt.err == "" {
			if again, err := StrictDomain(tt.want); err != nil || again != tt.want {
				t.Errorf("StrictDomain(%q) = %q, %v; canonical form must be stable", tt.want, again, err)
			}
			if m, err := MappedDomain(tt.in); err != nil || m != tt.want {
				t.Errorf("MappedDomain(%q) = %q, %v; a name without mapping must read the same both ways", tt.in, m, err)
			}
		}
	}
}

// TestMappedDomain: the directory's domains and the domains a text names
// are read the way DNS resolves them.
func TestMappedDomain(t *testing.T) {
	tests := []struct {
		in, want string
		err      string // substring of the error; "" for none
	}{
		{"acmecorp.example", "acmecorp.example", ""},
		{"AcmeCorp.Example", "acmecorp.example", ""},
		{"  acmecorp.example\t", "acmecorp.example", ""},
		{"acmecorp.example.", "acmecorp.example", ""}, // trailing dot of a FQDN
		{"shop.acmecorp.example", "shop.acmecorp.example", ""},
		{"a-b.example", "a-b.example", ""},
		{"123.example", "123.example", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"BÜCHER.EXAMPLE", "xn--bcher-kva.example", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"XN--BCHER-KVA.Example", "xn--bcher-kva.example", ""},
		{"école.example", "xn--cole-9oa.example", ""},
		{"e\u0301cole.example", "xn--cole-9oa.example", ""}, // NFD input, same name
		{"faß.example", "xn--fa-hia.example", ""},           // non-transitional: ß kept
		{"日本語.jp", "xn--wgv71a119e.jp", ""},
		// UTS #46 mapping: full-width letters and the ideographic full stop
		// are the same name, as DNS resolves it.
		{"ａｃｍｅｃｏｒｐ.example", "acmecorp.example", ""},
		{"acmecorp。example", "acmecorp.example", ""},
		// A homoglyph stays a different name.
		{"аcmecorp.example", "xn--cmecorp-1fg.example", ""}, // Cyrillic а (U+0430)
		{"xn--cmecorp-1fg.example", "xn--cmecorp-1fg.example", ""},
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example", ""},

		{"", "", "empty domain"},
		{"  ", "", "empty domain"},
		{".", "", "empty domain"},
		{"example", "", "want at least two labels"},
		{"localhost.", "", "want at least two labels"},
		{"a..example", "", "bad label"},
		{".acmecorp.example", "", "bad label"},
		{"acmecorp.example..", "", "bad label"},
		{"-acme.example", "", "bad label"},
		{"acme-.example", "", "bad label"},
		{"xn--.example", "", "bad label"},
		{"xn--999999999999.example", "", "bad punycode label"},
		{strings.Repeat("a", 64) + ".example", "", "bad label"},
		{strings.Repeat("abcdefghi.", 26) + "example", "", "longer than 253 bytes"},
		{"under_score.example", "", "invalid domain"},
		{"exa mple.example", "", "invalid domain"},
		{"*.acmecorp.example", "", "invalid domain"},
		{"[192.0.2.1]", "", "invalid domain"},
		{"acme corp", "", "invalid domain"},
	}
	for _, tt := range tests {
		got, err := MappedDomain(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("MappedDomain(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("MappedDomain(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
	// Canonical form is a fixed point.
	for _, tt := range tests {
		if tt.err != "" {
			continue
		}
		if again, err := MappedDomain(tt.want); err != nil || again != tt.want {
			t.Errorf("MappedDomain(%q) = %q, %v; canonical form must be stable", tt.want, again, err)
		}
	}
}

func TestRegistrableDomain(t *testing.T) {
	tests := []struct {
		in, want string
		err      string
	}{
		{"acmecorp.example", "acmecorp.example", ""},
		{"AcmeCorp.co.uk", "acmecorp.co.uk", ""},
		{"shop.acmecorp.co.uk", "shop.acmecorp.co.uk", ""},
		{"bücher.de", "xn--bcher-kva.de", ""},
		{"acme.com", "acme.com", ""},
		{"co.uk", "", "is a public suffix"},
		{"CO.UK.", "", "is a public suffix"},
		{"com.au", "", "is a public suffix"},
		{"github.io", "", "is a public suffix"}, // private section of the list
		{"com", "", "want at least two labels"},
		{"", "", "empty domain"},
		{"a..b", "", "bad label"},
	}
	for _, tt := range tests {
		got, err := Registrable(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("Registrable(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Registrable(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
		}
	}
}

func TestCanonicalEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"admin@acmecorp.example", "admin@acmecorp.example", true},
		{"Admin@AcmeCorp.Example", "admin@acmecorp.example", true},
		{"  ADMIN@ACMECORP.EXAMPLE\r\n", "admin@acmecorp.example", true},
		{"admin@acmecorp.example.", "admin@acmecorp.example", true},
		// +tags and dots are kept: different senders.
		{"a.b+x@d.example", "a.b+x@d.example", true},
		{"A.B+X@D.example", "a.b+x@d.example", true},
		{"ab@d.example", "ab@d.example", true},
		// IDNA domain both ways.
		{"owner@bücher.example", "owner@xn--bcher-kva.example", true},
		{"Owner@BÜCHER.example", "owner@xn--bcher-kva.example", true},
		{"owner@xn--bcher-kva.example", "owner@xn--bcher-kva.example", true},
		{"Jörg@bücher.example", "jörg@xn--bcher-kva.example", true},          // SMTPUTF8 local part: ASCII lower-cased
		{"JÖRG@bücher.example", "jÖrg@xn--bcher-kva.example", true},          // the rest compared byte for byte
		{"p\u212ai@pinkerton.example", "p\u212ai@pinkerton.example", true},   // KELVIN SIGN is no "k"
		{"adm\u0130n@acmecorp.example", "adm\u0130n@acmecorp.example", true}, // nor a dotted capital I an "i"
		{"admin@аcmecorp.example", "admin@xn--cmecorp-1fg.example", true},

		{"", "", false},
		{"admin", "", false},
		{"@acmecorp.example", "", false},
		{"admin@", "", false},
		{"admin@localhost", "", false},
		{"ad min@acmecorp.example", "", false},
		{"<admin@acmecorp.example>", "", false},
		{"Admin <admin@acmecorp.example>", "", false},
		{"admin@acme corp.example", "", false},
		{"admin@a..example", "", false},
		{"admin@[192.0.2.1]", "", false},
		{"ad\x1bmin@acmecorp.example", "", false},
		{"ad\u009bmin@acmecorp.example", "", false},
		{"ad\xffmin@acmecorp.example", "", false},
	}
	for _, tt := range tests {
		got, err := CanonicalEmail(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok {
			if err == nil {
				t.Errorf("CanonicalEmail(%q) = %q, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), "invalid email address") {
				t.Errorf("CanonicalEmail(%q) error %q does not say invalid email address", tt.in, err)
			}
		}
	}
	if a, _ := CanonicalEmail("a.b+x@d.example"); a == "ab@d.example" {
		t.Error("CanonicalEmail strips dots or +tags")
	}
}

// TestSenderEmail: an address a mail claims is compared without any
// mapping beyond ASCII lower-casing.
func TestSenderEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"admin@acmecorp.example", "admin@acmecorp.example"},
		{"ADMIN@ACMECORP.EXAMPLE", "admin@acmecorp.example"},
		{"owner@bücher.example", "owner@xn--bcher-kva.example"},
		{"owner@XN--BCHER-KVA.example", "owner@xn--bcher-kva.example"},
		{"p\u212ai@pinkerton.example", "p\u212ai@pinkerton.example"},
		{"\uff41dmin@acmecorp.example", "\uff41dmin@acmecorp.example"},
		{"admin@\uff41cmecorp.example", ""},
		{"admin@acme\u200bcorp.example", ""},
		{"admin@acme\u00adcorp.example", ""},
		{"admin@acmecorp\u3002example", ""},
		{"admin@acmecorp.example.", ""},
		{"owner@B\u00dcCHER.example", ""},
		{" admin@acmecorp.example", ""},
	}
	for _, tt := range tests {
		got, err := SenderEmail(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("SenderEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestLooseEmail: the address a look-alike imitates.
func TestLooseEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"p\u212ai@pinkerton.example", "pki@pinkerton.example"},
		{"adm\u0130n@acmecorp.example", "admin@acmecorp.example"},
		{"ADM\u0130N@ACMECORP.EXAMPLE", "admin@acmecorp.example"},
		{"adm\u0131n@acmecorp.example", "admin@acmecorp.example"}, // dotless i
		{"cert\u017f@hostingco.example", "certs@hostingco.example"},
		{"\uff41dmin@\uff41cmecorp.example", "admin@acmecorp.example"},
		{"ad\u200bmin@acme\u00adcorp.example", "admin@acmecorp.example"},
		{"admi\u0307n@\U0001d41acmecorp.example", "admin@acmecorp.example"},
		{"j\u00f6rg@x.example", "jorg@x.example"},
		{"\u0430dmin@acmecorp.example", "\u0430dmin@acmecorp.example"}, // Cyrillic: no confusables table
	}
	for _, tt := range tests {
		if got, ok := LooseEmail(tt.in); !ok || got != tt.want {
			t.Errorf("LooseEmail(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func domTestScan(text string) []string {
	got := []string{}
	ScanDomains(text, func(d string) { got = append(got, d) })
	return got
}

func TestScanDomains(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty", "", nil},
		{"no domain", "Hello, I forgot my password. Thanks!", nil},
		{"bare", "my site is acmecorp.example", []string{"acmecorp.example"}},
		{"bare at start and end", "acmecorp.example", []string{"acmecorp.example"}},
		{"upper case", "AcmeCorp.Example", []string{"acmecorp.example"}},
		{"sentence end", "It is acmecorp.example.", []string{"acmecorp.example"}},
		{"trailing dots", "see acmecorp.example... or shop.acmecorp.example.", []string{"acmecorp.example", "shop.acmecorp.example"}},
		{"FQDN with dot", "a.b.c.example.", []string{"a.b.c.example"}},
		{"URL", "see https://Shop.AcmeCorp.Example:8443/path/x.html?q=1#frag",
			[]string{"shop.acmecorp.example", "x.html"}},
		{"URL with user", "ftp://user@files.acmecorp.example/", []string{"files.acmecorp.example"}},
		{"email address", "write to admin@acmecorp.example please", []string{"acmecorp.example"}},
		{"email address, dotted local part", "from john.doe@acmecorp.example", []string{"john.doe", "acmecorp.example"}},
		{"text order", "b.example, a.example and c.example", []string{"b.example", "a.example", "c.example"}},
		{"repeats kept", "a.example a.example", []string{"a.example", "a.example"}},
		{"unicode", "unser Shop bücher.example ist kaputt", []string{"xn--bcher-kva.example"}},
		{"unicode upper case", "BÜCHER.EXAMPLE", []string{"xn--bcher-kva.example"}},
		{"unicode in URL", "https://www.bücher.example/ä", []string{"www.xn--bcher-kva.example"}},
		{"NFD unicode", "e\u0301cole.example", []string{"xn--cole-9oa.example"}},
		{"CJK", "日本語.jp です", []string{"xn--wgv71a119e.jp"}},
		{"homoglyph stays distinct", "аcmecorp.example", []string{"xn--cmecorp-1fg.example"}},
		{"punycode", "xn--bcher-kva.example", []string{"xn--bcher-kva.example"}},
		{"curly quotes", "“acmecorp.example”", []string{"acmecorp.example"}},
		{"other quotes and brackets", "«bücher.example» 'x.example' (y.example) <z.example> [w.example]",
			[]string{"xn--bcher-kva.example", "x.example", "y.example", "z.example", "w.example"}},
		{"possessive", "acmecorp.example's and acmecorp.example’s site", []string{"acmecorp.example", "acmecorp.example"}},
		{"comma and colon", "domain:acmecorp.example,shop.acmecorp.example;", []string{"acmecorp.example", "shop.acmecorp.example"}},
		{"leading and trailing hyphens trimmed", "-acmecorp.example-", []string{"acmecorp.example"}},
		{"version numbers skipped", "version 1.2.3, v10.0.1 and 3.14", nil},
		{"IPv4 skipped", "server 192.0.2.10 is down", nil},
		{"amounts skipped", "I paid $1,000.00 or 99.95", nil},
		{"bad labels skipped", "foo..bar.example", nil},
		{"no TLD", "acmecorp. example", nil},
		// File names and abbreviations look like host names and are emitted;
		// they only matter if an account held such a domain.
		{"file names emitted", "see report.pdf and INVOICE.PDF", []string{"report.pdf", "invoice.pdf"}},
		{"abbreviations emitted", "e.g. this", []string{"e.g"}},
	}
	for _, tt := range tests {
		got := domTestScan(tt.text)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: ScanDomains(%q) = %q, want %q", tt.name, tt.text, got, tt.want)
		}
	}
}

// A look-alike written as one word must not be read as the real domain.
func TestScanDomainsLookAlikes(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"acmecorp.example.evil.test", []string{"acmecorp.example.evil.test"}},
		{"evil-acmecorp.example", []string{"evil-acmecorp.example"}},
		{"acmecorp.example-evil.test", []string{"acmecorp.example-evil.test"}},
		{"acmecorpexample.test", []string{"acmecorpexample.test"}},
	}
	for _, tt := range tests {
		if got := domTestScan(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("ScanDomains(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	// An underscore is no host name character, so the scanner splits at it
	// and reads the tail as a name: "evil_acmecorp.example" names
	// acmecorp.example.
	if got := domTestScan("evil_acmecorp.example"); slices.Contains(got, "acmecorp.example") {
		t.Errorf("fixed bug regressed: ScanDomains(%q) = %q: a look-alike joined by '_' names the real domain", "evil_acmecorp.example", got)
	}
}

// MappedDomain maps the ideographic full stop (UTS #46), so the scanner
// should read a name written with one.
func TestScanDomainsIdeographicFullStop(t *testing.T) {
	c, err := MappedDomain("acmecorp。example")
	if err != nil || c != "acmecorp.example" {
		t.Fatalf("MappedDomain = %q, %v", c, err)
	}
	for _, text := range []string{"acmecorp。example", "acmecorp．example", "acmecorp｡example"} {
		if got := domTestScan(text); !slices.Equal(got, []string{"acmecorp.example"}) {
			t.Errorf("fixed bug regressed: ScanDomains(%q) = %q, want [acmecorp.example]: isHostRune does not accept the dots UTS #46 maps to '.' (U+3002, U+FF0E, U+FF61)", text, got)
		}
	}
}
