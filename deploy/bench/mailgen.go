package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
)

// The mailbox generator: realistic support mails, deterministic from the
// seed. Mail i of a kind depends only on (seed, kind, i), so the drain
// mailbox and the latency mails can be made again identically.

// genAccount is what the generator needs of an account of
// deploy/examples/accounts.yaml.
type genAccount struct {
	ID         string   `yaml:"id"`
	Colour     string   `yaml:"colour"`
	Name       string   `yaml:"name"`
	Username   string   `yaml:"username"`
	AdminEmail string   `yaml:"admin_email"`
	Domains    []string `yaml:"domains"`
	Partner    string   `yaml:"partner"`
	Orders     []struct {
		Number  string `yaml:"number"`
		Domain  string `yaml:"domain"`
		Product string `yaml:"product"`
	} `yaml:"orders"`
}

// loadAccounts reads the account directory the generated mails refer to.
func loadAccounts(path string) ([]genAccount, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	var f struct {
		Accounts []genAccount `yaml:"accounts"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse accounts %s: %w", path, err)
	}
	if len(f.Accounts) == 0 {
		return nil, fmt.Errorf("parse accounts %s: no account", path)
	}
	return f.Accounts, nil
}

// generator makes the mails.
type generator struct {
	seed     uint64
	accounts []genAccount
	byID     map[string]*genAccount
	langs    []*language
	intents  []weighted
	base     time.Time // the newest mail's date
}

// newGenerator makes a generator of mails about accounts; its texts are
// parsed from texts.yaml.
func newGenerator(seed uint64, accounts []genAccount) (*generator, error) {
	langs, err := languages()
	if err != nil {
		return nil, err
	}
	g := &generator{seed: seed, accounts: accounts, byID: map[string]*genAccount{}, langs: langs,
		intents: intentWeights(), base: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	for i := range g.accounts {
		g.byID[g.accounts[i].ID] = &g.accounts[i]
	}
	return g, nil
}

// Kinds of mail, by size and structure.
const (
	kindPlain       = "plain"       // ~70%: one text part, 1-8 KB, many charsets
	kindAlternative = "alternative" // ~20%: text and HTML, 8-40 KB
	kindAttachment  = "attachment"  // ~9%: an attachment of 30-300 KB
	kindLarge       = "large"       // ~1%: an attachment of 0.5-2 MB
	kindBig         = "big"         // the one -big mail
)

// genMail is one generated mail and what the generator chose for it.
type genMail struct {
	raw       []byte
	messageID string // without angle brackets
	kind      string
	lang      string
	charset   string
	auto      bool // an auto-reply
}

// rng returns the random source of mail i of a kind: independent of every
// other mail's.
func (g *generator) rng(prefix string, i int) *rand.Rand {
	k := uint64(0x9e3779b97f4a7c15)
	for _, c := range prefix {
		k = k*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(g.seed^k, uint64(i)))
}

// mail makes mail i with Message-ID <PREFIX-SEED-I@bench.invalid>.
func (g *generator) mail(prefix string, i int) genMail {
	r := g.rng(prefix, i)
	m := genMail{messageID: fmt.Sprintf("%s-%d-%d@bench.invalid", prefix, g.seed, i)}
	switch x := r.IntN(1000); {
	case x < 700:
		m.kind = kindPlain
	case x < 900:
		m.kind = kindAlternative
	case x < 990:
		m.kind = kindAttachment
	default:
		m.kind = kindLarge
	}
	lang := g.pickLang(r)
	m.lang = lang.code
	w := g.writer(r, lang)
	m.auto = r.IntN(100) < 2
	intent := pickWeighted(r, g.intents)
	if w.scenario == "codesign-owner" {
		intent = "code-signing"
	}
	subject, text := g.request(r, lang, w, intent, m.auto)
	var b mailBuilder
	g.headers(&b, r, prefix, i, w, lang, subject, m)

	signature := w.person.name + "\n" + w.org
	if !lang.japanese && r.IntN(3) == 0 {
		signature += fmt.Sprintf("\nTel. +%d %d %07d", 30+r.IntN(60), 10+r.IntN(80), r.IntN(10000000))
	}
	body := text + "\n\n" + pick(r, lang.closing) + "\n" + signature
	if r.IntN(2) == 0 {
		body += "\n\n" + lang.disclaimer
	}
	switch m.kind {
	case kindPlain:
		target := 1000 + r.IntN(7000)
		body = g.pad(r, lang, intent, body, target-b.Len()-300)
		m.charset = g.textPart(&b, r, lang, body)
	case kindAlternative:
		target := 8000 + r.IntN(32000)
		boundary := g.boundary(r, "alt")
		// Both parts carry the quoted history, the HTML one at about three
		// times the size: pad the text until both, encoded, make the target.
		var plain, htm []byte
		for want, try := (target-b.Len())/4, 0; try < 4; try++ {
			text := g.pad(r, lang, intent, body, want)
			plain, htm = qpEncode(crlf(text)), qpEncode(crlf(toHTML(text)))
			got := b.Len() + len(plain) + len(htm) + 300
			if got > target*9/10 && got < target*11/10 {
				break
			}
			want = want * (target - b.Len()) / max(got-b.Len(), 1)
		}
		b.header("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b.raw("\r\n")
		b.raw("--" + boundary + "\r\n")
		b.header("Content-Type", "text/plain; charset=utf-8")
		b.header("Content-Transfer-Encoding", "quoted-printable")
		b.raw("\r\n")
		b.buf.Write(plain)
		b.raw("\r\n--" + boundary + "\r\n")
		b.header("Content-Type", "text/html; charset=utf-8")
		b.header("Content-Transfer-Encoding", "quoted-printable")
		b.raw("\r\n")
		b.buf.Write(htm)
		b.raw("\r\n--" + boundary + "--\r\n")
		m.charset = "utf-8"
	case kindAttachment, kindLarge:
		var size int
		if m.kind == kindAttachment {
			size = logUniform(r, 30_000, 300_000)
		} else {
			size = logUniform(r, 500_000, 2_000_000)
		}
		body = g.pad(r, lang, intent, body, 500+r.IntN(3000))
		boundary := g.boundary(r, "mixed")
		b.header("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
		b.raw("\r\nThis is a multi-part message in MIME format.\r\n")
		b.raw("--" + boundary + "\r\n")
		m.charset = g.textPart(&b, r, lang, body)
		b.raw("\r\n--" + boundary + "\r\n")
		name, ctype, magic := attachmentKind(r, intent, w)
		b.header("Content-Type", ctype+`; name="`+name+`"`)
		b.header("Content-Disposition", `attachment; filename="`+name+`"`)
		b.header("Content-Transfer-Encoding", "base64")
		b.raw("\r\n")
		b.base64(randomBytes(r, magic, size))
		b.raw("--" + boundary + "--\r\n")
	}
	m.raw = b.Bytes()
	return m
}

// writer is who writes a mail, and what account it is about.
type writer struct {
	person   person
	address  string
	display  string // the From display name (a spoof puts an address there)
	org      string
	scenario string      // admin, colleague, partner, spoof, unknown-ref, unknown, codesign-owner
	about    *genAccount // the account the mail names, nil for none
}

func (g *generator) pickLang(r *rand.Rand) *language {
	total := 0
	for _, l := range g.langs {
		total += l.weight
	}
	x := r.IntN(total)
	for _, l := range g.langs {
		if x < l.weight {
			return l
		}
		x -= l.weight
	}
	return g.langs[0]
}

// writer picks a sender and the account the mail is about: admins of
// their own account, colleagues at its domain, partners for their
// customers, spoofed display names, strangers naming an account, and
// strangers naming none.
func (g *generator) writer(r *rand.Rand, lang *language) writer {
	p := pick(r, lang.people)
	w := writer{person: p, display: p.name}
	acct := &g.accounts[r.IntN(len(g.accounts))]
	switch x := r.IntN(100); {
	case x < 5: // a code-signing customer: the account holding a code-signing order
		for i := range g.accounts {
			for _, o := range g.accounts[i].Orders {
				if o.Product == "code-signing" {
					acct = &g.accounts[i]
				}
			}
		}
		w.scenario, w.about, w.address = "codesign-owner", acct, acct.AdminEmail
	case x < 30:
		w.scenario, w.about, w.address = "admin", acct, acct.AdminEmail
	case x < 42:
		dom := acct.AdminEmail[strings.IndexByte(acct.AdminEmail, '@')+1:]
		if len(acct.Domains) > 0 {
			dom = pick(r, acct.Domains)
		}
		w.scenario, w.about, w.address = "colleague", acct, p.local+"@"+dom
	case x < 52: // a partner for one of its customers
		var customers []*genAccount
		for i := range g.accounts {
			if g.accounts[i].Partner != "" && g.byID[g.accounts[i].Partner] != nil {
				customers = append(customers, &g.accounts[i])
			}
		}
		if len(customers) == 0 {
			w.scenario, w.about, w.address = "admin", acct, acct.AdminEmail
			break
		}
		c := pick(r, customers)
		w.scenario, w.about, w.address = "partner", c, g.byID[c.Partner].AdminEmail
		w.org = g.byID[c.Partner].Name
	case x < 55: // a stranger using the admin's address as display name
		w.scenario, w.about = "spoof", acct
		w.address = p.local + "@" + pick(r, lang.freemail)
		w.display = acct.AdminEmail
	case x < 77:
		w.scenario, w.about, w.address = "unknown-ref", acct, p.local+"@"+pick(r, lang.freemail)
	default:
		w.scenario, w.address = "unknown", p.local+"@"+pick(r, lang.freemail)
		w.org = pick(r, []string{"Nordwind Logistik GmbH", "Blue Harbour Ltd", "Atelier Lumière", "Costa Verde S.L.",
			"Studio Ricci", "Tulp Media B.V.", "Sol Nascente Lda", "Sakura Systems K.K.", "Freelancer"})
	}
	if w.org == "" && w.about != nil {
		w.org = w.about.Name
	}
	return w
}

// request writes the subject and the text of the request.
func (g *generator) request(r *rand.Rand, lang *language, w writer, intent string, auto bool) (subject, text string) {
	subject = pick(r, lang.subjects[intent])
	text = pick(r, lang.intents[intent])
	if auto {
		return lang.autoSubject + "Re: " + subject, pick(r, lang.autoBody)
	}
	var refs []string
	if a := w.about; a != nil {
		fill := func(s string) string {
			order, domain := "", ""
			if len(a.Orders) > 0 {
				o := a.Orders[r.IntN(len(a.Orders))]
				if intent == "code-signing" {
					for _, oo := range a.Orders {
						if oo.Product == "code-signing" {
							o = oo
						}
					}
				}
				order, domain = o.Number, o.Domain
			}
			if domain == "" && len(a.Domains) > 0 {
				domain = a.Domains[0]
			}
			return strings.NewReplacer("{order}", order, "{domain}", domain, "{username}", a.Username, "{cname}", a.Name).Replace(s)
		}
		if w.scenario == "partner" {
			refs = append(refs, fill(pick(r, lang.onBehalf)))
		}
		if len(a.Orders) > 0 && r.IntN(3) > 0 {
			refs = append(refs, fill(pick(r, lang.refOrder)))
		}
		if len(a.Domains) > 0 && r.IntN(2) == 0 {
			refs = append(refs, fill(pick(r, lang.refDomain)))
		}
		if a.Username != "" && intent != "username-reminder" && r.IntN(4) == 0 {
			refs = append(refs, fill(pick(r, lang.refUsername)))
		}
		if r.IntN(4) == 0 && len(a.Domains) > 0 {
			subject += " - " + a.Domains[0]
		}
	}
	if len(lang.secret) > 0 && r.IntN(20) == 0 {
		refs = append(refs, strings.ReplaceAll(pick(r, lang.secret), "{secret}", fmt.Sprintf("Sommer%d!x%d", 2020+r.IntN(7), r.IntN(100))))
	}
	if len(refs) > 0 {
		sep := " "
		if lang.japanese {
			sep = "\n"
		}
		text += "\n\n" + strings.Join(refs, sep)
	}
	return subject, text
}

// pad appends quoted history (support's earlier answers, the customer's
// earlier message about the same thing) until the text is about target
// bytes long.
func (g *generator) pad(r *rand.Rand, lang *language, intent, body string, target int) string {
	var b strings.Builder
	b.WriteString(body)
	depth := 1
	for b.Len() < target {
		when := g.base.Add(-time.Duration(1+r.IntN(2000)) * time.Hour).Format("Mon, 2 Jan 2006 at 15:04")
		quote := strings.Repeat("> ", depth)
		b.WriteString("\n\n" + strings.Repeat("> ", depth-1) + strings.ReplaceAll(lang.quoteHead, "{date}", when) + "\n")
		var q strings.Builder
		q.WriteString("Dear customer,\n\n")
		for range 1 + r.IntN(3) {
			q.WriteString(strings.ReplaceAll(pick(r, lang.supportReply), "{ticket}", fmt.Sprint(100000+r.IntN(900000))) + "\n\n")
		}
		q.WriteString("Kind regards,\nCertificate Support Team\nhttps://support.ca.example\n\n")
		q.WriteString("-----Original Message-----\n" + pick(r, lang.intents[intent]))
		for _, line := range strings.Split(wrap(q.String(), 72, lang.japanese), "\n") {
			b.WriteString(strings.TrimRight(quote+line, " ") + "\n")
		}
		depth = min(depth+1, 4)
	}
	return wrap(b.String(), 76, lang.japanese)
}

// headers writes the header fields up to (not including) Content-Type.
func (g *generator) headers(b *mailBuilder, r *rand.Rand, prefix string, i int, w writer, lang *language, subject string, m genMail) {
	date := g.base.Add(-time.Duration(r.IntN(30*24*3600)) * time.Second)
	domain := w.address[strings.IndexByte(w.address, '@')+1:]
	ip := fmt.Sprintf("198.51.100.%d", 1+r.IntN(254))
	b.header("Return-Path", "<"+w.address+">")
	b.header("Delivered-To", "support@ca.example")
	b.header("Received", fmt.Sprintf("from mx1.ca.example (mx1.ca.example [192.0.2.10])\r\n\tby imap.ca.example with LMTP\r\n\tid %s\r\n\t(envelope-from <%s>)\r\n\tfor <support@ca.example>; %s",
		randToken(r, 22), w.address, date.Add(3*time.Second).Format(time.RFC1123Z)))
	b.header("Received", fmt.Sprintf("from mail.%s (mail.%s [%s])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\tby mx1.ca.example (Postfix) with ESMTPS id %s\r\n\tfor <support@ca.example>; %s",
		domain, domain, ip, strings.ToUpper(randToken(r, 11)), date.Add(2*time.Second).Format(time.RFC1123Z)))
	if r.IntN(3) > 0 {
		verdict := "pass"
		if w.scenario == "spoof" || r.IntN(10) == 0 {
			verdict = pick(r, []string{"fail", "none", "neutral"})
		}
		b.header("Authentication-Results", fmt.Sprintf("mx1.ca.example;\r\n\tdkim=%s header.d=%s header.s=selector1 header.b=%s;\r\n\tspf=pass (mx1.ca.example: domain of %s designates %s as permitted sender) smtp.mailfrom=%s;\r\n\tdmarc=%s (p=REJECT sp=REJECT dis=NONE) header.from=%s",
			verdict, domain, randToken(r, 8), w.address, ip, domain, verdict, domain))
	}
	if r.IntN(2) == 0 {
		b.header("DKIM-Signature", fmt.Sprintf("v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=selector1;\r\n\tt=%d; h=from:to:subject:date:message-id:mime-version:content-type;\r\n\tbh=%s;\r\n\tb=%s",
			domain, date.Unix(), base64.StdEncoding.EncodeToString(randomBytes(r, "", 32)),
			foldB64(base64.StdEncoding.EncodeToString(randomBytes(r, "", 256)))))
	}
	b.header("From", encodeAddress(w.display, w.address, lang, r))
	b.header("To", "Certificate Support <support@ca.example>")
	if r.IntN(8) == 0 {
		cc := pick(r, lang.people)
		b.header("Cc", encodeAddress(cc.name, cc.local+"@"+domain, lang, r))
	}
	b.header("Subject", encodeHeader(subject, lang, r))
	b.header("Date", date.Format(time.RFC1123Z))
	b.header("Message-ID", "<"+m.messageID+">")
	if i > 0 && r.IntN(100) < 15 { // a thread: a reply to an earlier mail
		parent := fmt.Sprintf("<%s-%d-%d@bench.invalid>", prefix, g.seed, r.IntN(i))
		b.header("In-Reply-To", parent)
		b.header("References", parent)
	}
	if m.auto {
		b.header("Auto-Submitted", "auto-replied")
		if r.IntN(2) == 0 {
			b.header("X-Auto-Response-Suppress", "All")
		}
	}
	switch r.IntN(4) {
	case 0:
		b.header("X-Mailer", "Microsoft Outlook 16.0")
		b.header("Thread-Index", base64.StdEncoding.EncodeToString(randomBytes(r, "", 22)))
	case 1:
		b.header("User-Agent", "Mozilla Thunderbird")
	case 2:
		b.header("X-Mailer", "Apple Mail (2.3774.600.62)")
	}
	b.header("Content-Language", lang.code)
	b.header("MIME-Version", "1.0")
}

// textPart writes one text/plain part (its Content-Type, encoding and
// body) in a charset and transfer encoding chosen as mailers do. It
// returns the charset.
func (g *generator) textPart(b *mailBuilder, r *rand.Rand, lang *language, body string) string {
	data := crlf(body)
	ascii := isASCII(data)
	type choice struct{ charset, cte string }
	var c choice
	switch {
	case lang.japanese:
		c = pick(r, []choice{{"ISO-2022-JP", "base64"}, {"ISO-2022-JP", "7bit"}, {"Shift_JIS", "base64"}, {"utf-8", "base64"}})
	case ascii:
		c = pick(r, []choice{{"us-ascii", "7bit"}, {"utf-8", "7bit"}, {"utf-8", "quoted-printable"}})
	default:
		c = pick(r, []choice{{"utf-8", "quoted-printable"}, {"utf-8", "quoted-printable"}, {"utf-8", "8bit"},
			{"ISO-8859-1", "quoted-printable"}, {"ISO-8859-1", "8bit"}, {"windows-1252", "quoted-printable"}})
	}
	data = encodeCharset(c.charset, data)
	ctype := "text/plain; charset=" + c.charset
	if !lang.japanese && r.IntN(3) == 0 {
		ctype += "; format=flowed"
	}
	b.header("Content-Type", ctype)
	b.header("Content-Transfer-Encoding", c.cte)
	b.raw("\r\n")
	switch c.cte {
	case "quoted-printable":
		b.qp(data)
	case "base64":
		b.base64(data)
	default:
		b.buf.Write(data)
		b.raw("\r\n")
	}
	return c.charset
}

// bigMail writes the one big mail, exactly size bytes: a short request
// with a base64 attachment (a support bundle), streamed to w.
func (g *generator) bigMail(w io.Writer, i int, size int64) (messageID string, err error) {
	r := g.rng("bench", i)
	lang := g.langs[0]
	acct := &g.accounts[0]
	for j := range g.accounts {
		if len(g.accounts[j].Orders) > 0 {
			acct = &g.accounts[j]
			break
		}
	}
	messageID = fmt.Sprintf("bench-%d-%d@bench.invalid", g.seed, i)
	wr := writer{person: lang.people[0], display: lang.people[0].name, address: acct.AdminEmail, org: acct.Name, scenario: "admin", about: acct}
	var b mailBuilder
	g.headers(&b, r, "bench", i, wr, lang, "Cannot export the certificate: logs attached", genMail{messageID: messageID})
	boundary := g.boundary(r, "mixed")
	b.header("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	b.raw("\r\n--" + boundary + "\r\n")
	b.header("Content-Type", "text/plain; charset=utf-8")
	b.header("Content-Transfer-Encoding", "7bit")
	b.raw("\r\n")
	order := ""
	if len(acct.Orders) > 0 {
		order = " (order " + acct.Orders[0].Number + ")"
	}
	b.buf.Write(crlf("Hello,\n\nexporting our certificate" + order + " fails and we cannot log in to reset the password either.\n" +
		"I attach the support bundle of our server with all logs, as your colleague asked.\n\nKind regards,\n" + wr.person.name + "\n"))
	b.raw("\r\n--" + boundary + "\r\n")
	b.header("Content-Type", `application/zip; name="support-bundle.zip"`)
	b.header("Content-Disposition", `attachment; filename="support-bundle.zip"`)
	b.header("Content-Transfer-Encoding", "base64")
	b.raw("\r\n")
	head := b.Bytes()
	tail := "--" + boundary + "--"
	avail := size - int64(len(head)) - int64(len(tail)) - 2 // the last CRLF
	if avail < 78 {
		return "", fmt.Errorf("big mail: %d bytes is too small: at least %d", size, int64(len(head))+int64(len(tail))+80)
	}
	// The largest attachment whose encoding fits; the rest is transport
	// padding (spaces) after the close delimiter, which MIME allows.
	n := avail * 57 / 78
	for b64Size(n+1) <= avail {
		n++
	}
	for b64Size(n) > avail {
		n--
	}
	padding := avail - b64Size(n)
	bw := bufio.NewWriterSize(w, 1<<20)
	bw.Write(head)
	lw := &lineWriter{w: bw}
	enc := base64.NewEncoder(base64.StdEncoding, lw)
	chunk := make([]byte, 57*1024)
	for left := n; left > 0; {
		k := min(left, int64(len(chunk)))
		fillRandom(r, chunk[:k])
		enc.Write(chunk[:k])
		left -= k
	}
	enc.Close()
	lw.end()
	bw.WriteString(tail)
	bw.WriteString(strings.Repeat(" ", int(padding)))
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("write big mail: %w", err)
	}
	return messageID, nil
}

// b64Size is the size of n bytes in base64 with 76-character CRLF lines.
func b64Size(n int64) int64 {
	chars := (n + 2) / 3 * 4
	lines := (chars + 75) / 76
	return chars + 2*lines
}

// lineWriter breaks base64 into 76-character CRLF lines.
type lineWriter struct {
	w   *bufio.Writer
	col int
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(76-l.col, len(p))
		l.w.Write(p[:k])
		p = p[k:]
		if l.col += k; l.col == 76 {
			l.w.WriteString("\r\n")
			l.col = 0
		}
	}
	return n, nil
}

func (l *lineWriter) end() {
	if l.col > 0 {
		l.w.WriteString("\r\n")
		l.col = 0
	}
}

// mailbox is the generated drain mailbox on disk, one file a mail.
type mailbox struct {
	dir     string
	files   []string
	sizes   []int64
	bytes   int64
	bigSize int64 // 0: none
	bigID   string
	kinds   map[string]int
	langs   map[string]int
	charset map[string]int
	auto    int
}

// generateMailbox writes n mails into dir: n-1 ordinary ones and the big
// one in the middle (or n ordinary ones when big is 0).
func (g *generator) generateMailbox(dir string, n int, big int64) (*mailbox, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("generate mailbox: %w", err)
	}
	mb := &mailbox{dir: dir, kinds: map[string]int{}, langs: map[string]int{}, charset: map[string]int{}}
	bigAt := -1
	if big > 0 {
		bigAt = n / 2
	}
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("%07d.eml", i))
		if i == bigAt {
			f, err := os.Create(path)
			if err != nil {
				return nil, fmt.Errorf("generate mailbox: %w", err)
			}
			id, err := g.bigMail(f, i, big)
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("write big mail: %w", cerr)
			}
			if err != nil {
				return nil, err
			}
			mb.bigSize, mb.bigID = big, id
			mb.kinds[kindBig]++
			mb.files, mb.sizes = append(mb.files, path), append(mb.sizes, big)
			mb.bytes += big
			continue
		}
		m := g.mail("bench", i)
		if err := os.WriteFile(path, m.raw, 0o644); err != nil {
			return nil, fmt.Errorf("generate mailbox: %w", err)
		}
		mb.files, mb.sizes = append(mb.files, path), append(mb.sizes, int64(len(m.raw)))
		mb.bytes += int64(len(m.raw))
		mb.kinds[m.kind]++
		mb.langs[m.lang]++
		mb.charset[strings.ToLower(m.charset)]++
		if m.auto {
			mb.auto++
		}
	}
	return mb, nil
}

// mailBuilder accumulates a mail with CRLF line ends.
type mailBuilder struct{ buf bytes.Buffer }

func (b *mailBuilder) Len() int      { return b.buf.Len() }
func (b *mailBuilder) Bytes() []byte { return b.buf.Bytes() }
func (b *mailBuilder) raw(s string)  { b.buf.WriteString(s) }
func (b *mailBuilder) header(name, value string) {
	b.buf.WriteString(name + ": " + value + "\r\n")
}

// qp writes data quoted-printable, ending with a CRLF.
func (b *mailBuilder) qp(data []byte) { b.buf.Write(qpEncode(data)) }

// qpEncode encodes data quoted-printable, ending with a CRLF.
func qpEncode(data []byte) []byte {
	var out bytes.Buffer
	w := quotedprintable.NewWriter(&out)
	w.Write(data)
	w.Close()
	out.WriteString("\r\n")
	return out.Bytes()
}

// base64 writes data in 76-character lines, ending with a CRLF.
func (b *mailBuilder) base64(data []byte) {
	bw := bufio.NewWriter(&b.buf)
	lw := &lineWriter{w: bw}
	enc := base64.NewEncoder(base64.StdEncoding, lw)
	enc.Write(data)
	enc.Close()
	lw.end()
	bw.Flush()
}

func (g *generator) boundary(r *rand.Rand, kind string) string {
	return fmt.Sprintf("----=_Part_%s_%d.%d", kind, r.Int64N(1e12), r.Int64N(1e13))
}

// attachmentKind chooses what is attached: a screenshot, a PDF, a photo,
// an archive, now and then a PKCS#12 file (customers do send those).
func attachmentKind(r *rand.Rand, intent string, w writer) (name, ctype, magic string) {
	order := fmt.Sprint(4000000 + r.IntN(999999))
	if w.about != nil && len(w.about.Orders) > 0 {
		order = w.about.Orders[0].Number
	}
	if intent == "code-signing" && r.IntN(4) == 0 {
		return "codesigning-" + order + ".p12", "application/x-pkcs12", "\x30\x82"
	}
	switch r.IntN(5) {
	case 0, 1:
		return fmt.Sprintf("Screenshot %d-11-%02d at 10.%02d.%02d.png", 2026, 1+r.IntN(27), r.IntN(60), r.IntN(60)), "image/png", "\x89PNG\r\n\x1a\n"
	case 2:
		return "invoice-" + order + ".pdf", "application/pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
	case 3:
		return fmt.Sprintf("IMG_%04d.jpg", r.IntN(10000)), "image/jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF"
	default:
		return "error-log.zip", "application/zip", "PK\x03\x04"
	}
}

// randomBytes returns size bytes beginning with magic, the rest random
// (incompressible, like real attachments).
func randomBytes(r *rand.Rand, magic string, size int) []byte {
	out := make([]byte, max(size, len(magic)))
	copy(out, magic)
	fillRandom(r, out[len(magic):])
	return out
}

func fillRandom(r *rand.Rand, p []byte) {
	for len(p) >= 8 {
		v := r.Uint64()
		for k := range 8 {
			p[k] = byte(v >> (8 * k))
		}
		p = p[8:]
	}
	for k := range p {
		p[k] = byte(r.Uint32())
	}
}

func randToken(r *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// foldB64 folds a long base64 value of a header field.
func foldB64(s string) string {
	var parts []string
	for len(s) > 70 {
		parts = append(parts, s[:70])
		s = s[70:]
	}
	parts = append(parts, s)
	return strings.Join(parts, "\r\n\t ")
}

// logUniform returns a size between lo and hi, small ones more likely.
func logUniform(r *rand.Rand, lo, hi int) int {
	return int(float64(lo) * math.Pow(float64(hi)/float64(lo), r.Float64()))
}

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

func pickWeighted(r *rand.Rand, list []weighted) string {
	total := 0
	for _, w := range list {
		total += w.weight
	}
	x := r.IntN(total)
	for _, w := range list {
		if x < w.weight {
			return w.name
		}
		x -= w.weight
	}
	return list[0].name
}

// crlf turns LF line ends into CRLF.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// encodeCharset encodes UTF-8 text into a charset; what the charset
// cannot hold is replaced, as mailers do.
func encodeCharset(charset string, text []byte) []byte {
	var enc *encoding.Encoder
	switch strings.ToLower(charset) {
	case "iso-8859-1":
		enc = charmap.ISO8859_1.NewEncoder()
	case "windows-1252":
		enc = charmap.Windows1252.NewEncoder()
	case "iso-2022-jp":
		enc = japanese.ISO2022JP.NewEncoder()
	case "shift_jis":
		enc = japanese.ShiftJIS.NewEncoder()
	default:
		return text
	}
	out, err := encoding.ReplaceUnsupported(enc).Bytes(text)
	if err != nil {
		return text
	}
	return out
}

// encodeHeader encodes a header value with RFC 2047 words when it is not
// ASCII: UTF-8 Q or B, ISO-8859-1 or ISO-2022-JP now and then.
func encodeHeader(s string, lang *language, r *rand.Rand) string {
	if isASCII([]byte(s)) {
		return s
	}
	if lang.japanese {
		if r.IntN(2) == 0 {
			enc := encodeCharset("ISO-2022-JP", []byte(s))
			if w := "=?ISO-2022-JP?B?" + base64.StdEncoding.EncodeToString(enc) + "?="; len(w) <= 75 {
				return w
			}
		}
		return mime.BEncoding.Encode("UTF-8", s)
	}
	if r.IntN(4) == 0 {
		if latin := encodeCharset("ISO-8859-1", []byte(s)); !bytes.Contains(latin, []byte{0x1a}) {
			return mime.QEncoding.Encode("ISO-8859-1", string(latin))
		}
	}
	if r.IntN(2) == 0 {
		return mime.BEncoding.Encode("UTF-8", s)
	}
	return mime.QEncoding.Encode("UTF-8", s)
}

// encodeAddress writes "Display Name <address>", the name encoded or
// quoted as needed.
func encodeAddress(display, address string, lang *language, r *rand.Rand) string {
	if display == "" {
		return address
	}
	if isASCII([]byte(display)) {
		if strings.ContainsAny(display, `@.,"'()<>:;[]`) {
			return `"` + strings.ReplaceAll(display, `"`, `\"`) + `" <` + address + ">"
		}
		return display + " <" + address + ">"
	}
	return encodeHeader(display, lang, r) + " <" + address + ">"
}

// wrap breaks lines longer than width at spaces (Japanese text is left as
// it is: its lines are short).
func wrap(s string, width int, japanese bool) string {
	if japanese {
		return s
	}
	var out strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			out.WriteByte('\n')
		}
		prefix := "" // a quote's "> > " goes on every piece
		for strings.HasPrefix(line[len(prefix):], "> ") {
			prefix += "> "
		}
		for utf8.RuneCountInString(line) > width {
			cut := strings.LastIndexByte(line[:min(len(line), width+1)], ' ')
			if cut <= len(prefix) {
				break // one long word: left as it is
			}
			out.WriteString(line[:cut] + "\n")
			line = prefix + line[cut+1:]
		}
		out.WriteString(line)
	}
	return out.String()
}

// toHTML renders the plain text as Outlook would: paragraphs, quoted
// history in blockquotes, the styles first.
func toHTML(text string) string {
	var b strings.Builder
	b.WriteString(outlookStyle)
	depth := 0
	for _, line := range strings.Split(text, "\n") {
		d := 0
		for strings.HasPrefix(line, "> ") || line == ">" {
			line = strings.TrimPrefix(strings.TrimPrefix(line, ">"), " ")
			d++
		}
		for ; depth < d; depth++ {
			b.WriteString(`<blockquote style="border:none;border-left:solid #E1E1E1 1.0pt;padding:0cm 0cm 0cm 4.0pt;margin-left:4.8pt">` + "\n")
		}
		for ; depth > d; depth-- {
			b.WriteString("</blockquote>\n")
		}
		if strings.TrimSpace(line) == "" {
			b.WriteString("<p class=\"MsoNormal\"><o:p>&nbsp;</o:p></p>\n")
			continue
		}
		b.WriteString(`<p class="MsoNormal"><span style="font-size:11.0pt;font-family:&quot;Calibri&quot;,sans-serif;mso-fareast-language:EN-US">` +
			html.EscapeString(line) + "<o:p></o:p></span></p>\n")
	}
	for ; depth > 0; depth-- {
		b.WriteString("</blockquote>\n")
	}
	b.WriteString("</div>\n</body>\n</html>\n")
	return b.String()
}
