package senderauth

import (
	"errors"
	"strings"
	"testing"
)

// summary writes a parsed header compactly: "ID[ V]; method[/v]=result
// [reason=R] ptype.prop=value ...; ..." with every value as read.
func summary(ar authResults) string {
	var b strings.Builder
	b.WriteString(ar.AuthservID)
	if ar.Version != "" {
		b.WriteString(" " + ar.Version)
	}
	if ar.None {
		b.WriteString("; none")
	}
	for _, r := range ar.Results {
		b.WriteString("; " + r.Method)
		if r.MethodVersion != "" {
			b.WriteString("/" + r.MethodVersion)
		}
		b.WriteString("=" + r.Result)
		if r.HasReason {
			b.WriteString(" reason=" + r.Reason)
		}
		for _, p := range r.Props {
			b.WriteString(" " + p.Type + "." + p.Name + "=" + p.Value)
		}
	}
	return b.String()
}

func TestParseAuthResults(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     string // summary; "" when an error is wanted
		err      string // in the error, "" for none
	}{
		// RFC 8601 appendix B.
		{"B.2 no authentication done", "example.org 1; none", "example.org 1; none", ""},
		{"B.3 one result", "example.com;\r\n                  spf=pass smtp.mailfrom=example.net", "example.com; spf=pass smtp.mailfrom=example.net", ""},
		{"B.4 several results", "example.com;\r\n                  auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n                  spf=pass smtp.mailfrom=example.net",
			"example.com; auth=pass smtp.auth=sender@example.net; spf=pass smtp.mailfrom=example.net", ""},
		{"B.4 iprev", "example.com; iprev=pass\r\n                  policy.iprev=192.0.2.200", "example.com; iprev=pass policy.iprev=192.0.2.200", ""},
		{"B.5 dkim", "example.com;\r\n                  dkim=pass (good signature) header.d=example.com", "example.com; dkim=pass header.d=example.com", ""},
		{"B.6 reasons", "example.com;\r\n                  dkim=pass reason=\"good signature\"\r\n                    header.i=@mail-router.example.net;\r\n                  dkim=fail reason=\"bad signature\"\r\n                    header.i=@newyork.example.com",
			"example.com; dkim=pass reason=good signature header.i=@mail-router.example.net; dkim=fail reason=bad signature header.i=@newyork.example.com", ""},
		{"B.7 comment-heavy", "foo.example.net (foobar) 1 (baz);\r\n    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n      policy (A dot can go here) . (like that) expired\r\n      (this surprised me) = (as I wasn't expecting it) 1362471462",
			"foo.example.net 1; dkim/1=fail policy.expired=1362471462", ""},

		// What servers write.
		{"unfolded gmail", "mx.google.com; dkim=pass header.i=@example.com header.s=20230601 header.b=Xc8n9m9C; spf=pass (google.com: domain of a@example.com designates 209.85.220.41 as permitted sender) smtp.mailfrom=a@example.com; dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com",
			"mx.google.com; dkim=pass header.i=@example.com header.s=20230601 header.b=Xc8n9m9C; spf=pass smtp.mailfrom=a@example.com; dmarc=pass header.from=example.com", ""},
		{"comment with a semicolon", "mx; dkim=pass (2048-bit key; unprotected) header.d=example.com header.b=\"AbC+/dEf\"", "mx; dkim=pass header.d=example.com header.b=AbC+/dEf", ""},
		{"upper case is lowered, values kept", "MX; DKIM=PASS HEADER.D=Example.COM", "MX; dkim=pass header.d=Example.COM", ""},
		{"white space everywhere", "  mx  ;  dkim  =  pass  header . d  =  example.com  ", "mx; dkim=pass header.d=example.com", ""},
		{"quoted authserv-id", `"mx.ca.example" (ours); none`, "mx.ca.example; none", ""},
		{"none with a comment", "mx; none (nothing to check)", "mx; none", ""},
		{"method named none-like", "mx; none-x=pass", "mx; none-x=pass", ""},
		{"method version", "mx; dkim/1=pass header.d=example.com", "mx; dkim/1=pass header.d=example.com", ""},
		{"pvalue forms", `mx; x=pass a.b=@example.com a.c=u.v@example.com a.d="a b;c"@example.com a.e=example.com a.f="q;(x)" a.g=a=b/c@example.com`,
			`mx; x=pass a.b=@example.com a.c=u.v@example.com a.d="a b;c"@example.com a.e=example.com a.f=q;(x) a.g=a=b/c@example.com`, ""},
		{"quoted-pair in a quoted string", `mx; dkim=pass reason="a \"; dmarc=pass\" b" header.d=example.com`, `mx; dkim=pass reason=a "; dmarc=pass" b header.d=example.com`, ""},
		{"comment right after a value", "mx; dmarc=pass header.from=example.com(evil.example)", "mx; dmarc=pass header.from=example.com", ""},
		{"UTF-8 in comments and quoted strings", "mx; dkim=pass (clé vérifiée) header.d=\"bücher.example\"", "mx; dkim=pass header.d=bücher.example", ""},

		// Hostile: text a server copied into comments and quoted strings.
		{"result in an SPF comment", "mx; spf=pass (mx: domain of x;dmarc=pass header.from=acmecorp.example designates 192.0.2.1 as permitted sender) smtp.mailfrom=evil.example; dmarc=fail header.from=acmecorp.example",
			"mx; spf=pass smtp.mailfrom=evil.example; dmarc=fail header.from=acmecorp.example", ""},
		{"nested comment", "mx; spf=pass (a (b) ;dmarc=pass header.from=acmecorp.example (c (d)) ) smtp.helo=evil.example", "mx; spf=pass smtp.helo=evil.example", ""},
		{"escaped parens", `mx; spf=pass (a \) ;dmarc=pass header.from=acmecorp.example \( b) smtp.helo=evil.example`, "mx; spf=pass smtp.helo=evil.example", ""},
		{"escaped backslash ends the comment", `mx; spf=pass (a \\) ;dmarc=pass header.from=acmecorp.example`, "mx; spf=pass; dmarc=pass header.from=acmecorp.example", ""},
		{"second resinfo in a comment", "mx; dkim=none (x; dkim=pass header.d=acmecorp.example)", "mx; dkim=none", ""},
		{"semicolon in a quoted local-part", `mx; spf=pass smtp.mailfrom="x;dmarc=pass header.from=acmecorp.example;"@evil.example; dkim=none`,
			`mx; spf=pass smtp.mailfrom="x;dmarc=pass header.from=acmecorp.example;"@evil.example; dkim=none`, ""},
		{"semicolon in a quoted value", `mx; spf=none smtp.helo="a; dkim=pass header.d=acmecorp.example"; dkim=none`, "mx; spf=none smtp.helo=a; dkim=pass header.d=acmecorp.example; dkim=none", ""},
		{"property only in a comment", "mx; dmarc=pass (header.from=acmecorp.example)", "mx; dmarc=pass", ""},
		{"quoted pair in a comment before a paren", `mx; dkim=none (\(\(\(; dkim=pass header.d=acmecorp.example)`, "mx; dkim=none", ""},

		// Not to the grammar.
		{"empty", "", "", "byte 0: want an authserv-id, found the end"},
		{"only an id", "mx.ca.example", "", "byte 13: want \";\" after the authserv-id, found the end"},
		{"tspecial in the id", "mx/1; none", "", "byte 2: want \";\" after the authserv-id"},
		{"version glued to a quoted id", `"mx"1; none`, "", "byte 4: want \";\""},
		{"trailing semicolon", "mx; dmarc=pass header.from=acmecorp.example;", "", "byte 44: want a method, found the end"},
		{"empty resinfo", "mx; dkim=none;; dmarc=pass", "", "byte 14: want a method"},
		{"none then more", "mx; none; dkim=pass", "", "byte 8: want \"=\" after method \"none\""},
		{"no result", "mx; dkim=", "", "byte 9: want a result, found the end"},
		{"no method version", "mx; dkim/=pass", "", "byte 9: want a method version"},
		{"property without a dot", "mx; dmarc=pass action=none header.from=acmecorp.example", "", `byte 21: want "." after ptype "action", found "=none`},
		{"property without a value", "mx; dmarc=pass header.from=", "", "byte 27: want a property value, found the end"},
		{"base64 in an unquoted value", "mx; dkim=pass header.d=example.com header.b=ab/c+d=", "mx; dkim=pass header.d=example.com header.b=ab/c+d=", ""},
		{"IPv6 in an unquoted value", "mx; iprev=pass smtp.remote-ip=2001:db8::1", "mx; iprev=pass smtp.remote-ip=2001:db8::1", ""},
		{"local-part that is no dot-atom", "mx; spf=pass smtp.mailfrom=a:b@example.com", "", "is no dot-atom"},
		{"reason after a property", "mx; dkim=fail header.d=a.example reason=bad", "", "byte 33: reason after the properties"},
		{"two reasons", "mx; dkim=fail reason=a reason=b", "", "byte 23: a second reason"},
		{"domain without a dot", "mx; spf=pass smtp.mailfrom=a@localhost", "", "byte 29: want a domain name with a dot"},
		{"bad local-part", "mx; spf=pass smtp.mailfrom=a..b@example.com", "", "byte 27: local-part \"a..b\" is no dot-atom"},
		{"bad domain label", "mx; spf=pass smtp.mailfrom=a@-x.example", "", `bad label "-x"`},
		{"unbalanced open paren", "mx; spf=none (helo x( has no record) smtp.helo=e.example; dkim=pass header.d=acmecorp.example", "", "byte 13: comment is not closed"},
		{"unbalanced close paren", "mx; spf=none (helo x) has no record) smtp.helo=e.example", "", `byte 26: want "." after ptype "has"`},
		{"stray close paren", "mx; dkim=none )", "", `byte 14: want a property, found ")"`},
		{"unbalanced quote", `mx; spf=pass smtp.mailfrom="x;dkim=pass header.d=acmecorp.example@evil.example; dkim=none`, "", "byte 27: quoted string is not closed"},
		{"backslash at the end", `mx; none (a \`, "", `byte 12: "\" at the end`},
		{"NUL", "mx; dkim=pass (a\x00b)", "", `byte 16: control character '\x00'`},
		{"escape sequence in a comment", "mx; dkim=pass (\x1b[2J)", "", `byte 15: control character '\x1b'`},
		{"C1 control", "mx; dkim=pass (\u009b2J)", "", "byte 15: invalid UTF-8 or control character"},
		{"invalid UTF-8", "mx; dkim=pass (\xff)", "", "byte 15: invalid UTF-8"},
		{"bare line feed", "mx;\n dkim=pass", "", "byte 3: line break that is no fold"},
		{"CRLF without white space", "mx;\r\ndkim=pass", "", "byte 3: line break that is no fold"},
		{"non-ASCII unquoted", "mx; dkim=pass header.d=bücher.example", "", `byte 24: 'ü' in an unquoted property value`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ar, err := parseAuthResults(tt.in)
			if tt.err != "" {
				var pe *authResultsError
				if err == nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseAuthResults(%q) = %q, %v; want error %q", tt.in, summary(ar), err, tt.err)
				}
				if pe.Offset < 0 || pe.Offset > len(tt.in) {
					t.Errorf("offset %d outside the value", pe.Offset)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAuthResults(%q): %v", tt.in, err)
			}
			if got := summary(ar); got != tt.want {
				t.Errorf("parseAuthResults(%q)\n got %s\nwant %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestParseAuthResultsKeepsID: an error after the authserv-id still says
// whose field could not be read, so that a broken trusted field is not
// passed over for a forged one below it.
func TestParseAuthResultsKeepsID(t *testing.T) {
	ar, err := parseAuthResults(`"mx.ca.example" 2 (x); dkim=pass (unclosed`)
	if err == nil || ar.AuthservID != "mx.ca.example" || ar.Version != "2" {
		t.Fatalf("got %+v, %v", ar, err)
	}
}

// TestParseAuthResultsAsides: the texts the grammar skips are kept for the
// tamper check: top-level comments as written, quoted strings unquoted.
func TestParseAuthResultsAsides(t *testing.T) {
	ar, err := parseAuthResults(`mx (a (b) \)); dkim=none reason="r \"q\"" (c)`)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(ar.Comments, "|"), `a (b) \)|c`; got != want {
		t.Errorf("comments %q, want %q", got, want)
	}
	if got, want := strings.Join(ar.Quoted, "|"), `r "q"`; got != want {
		t.Errorf("quoted %q, want %q", got, want)
	}
}

func FuzzParseAuthResults(f *testing.F) {
	for _, s := range []string{
		"example.org 1; none",
		"mx; spf=pass (a (b) \\) ;dmarc=pass) smtp.mailfrom=\"x;y\"@e.example; dkim/1=fail reason=\"r\" header.d=e.example",
		"foo.example.net (foobar) 1 (baz); dkim (x) / 1 (y) = (z) fail policy (a) . (b) expired (c) = (d) 1362471462",
		"mx; dkim=pass header.b=ab/cd",
		"mx;\r\n dkim=pass (\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := parseAuthResults(s)
		var pe *authResultsError
		switch {
		case err != nil && !errors.As(err, &pe):
			t.Fatalf("%q: error of type %T", s, err)
		case pe != nil && (pe.Offset < 0 || pe.Offset > len(s)):
			t.Fatalf("%q: offset %d", s, pe.Offset)
		}
	})
}

func BenchmarkParseAuthResults(b *testing.B) {
	const v = "mx.ca.example; arc=none (no signatures found); dkim=pass (2048-bit rsa key sha256) header.d=acmecorp.example header.i=@acmecorp.example header.b=\"Xc8n/9m9\" header.a=rsa-sha256 header.s=fm1; " +
		"dmarc=pass policy.published-domain-policy=reject policy.applied-disposition=none policy.evaluated-disposition=none (p=reject,d=none,d.eval=none) policy.policy-from=p header.from=acmecorp.example; " +
		"iprev=pass smtp.remote-ip=192.0.2.25 (out1.acmecorp.example); spf=pass smtp.mailfrom=admin@acmecorp.example smtp.helo=out1.acmecorp.example; x-me-sender=none"
	b.ReportAllocs()
	b.SetBytes(int64(len(v)))
	for b.Loop() {
		if _, err := parseAuthResults(v); err != nil {
			b.Fatal(err)
		}
	}
}
