package answer

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// DefaultLanguage is the language answered in when nothing better is known,
// and the one every template must have.
const DefaultLanguage = "en"

// maxSampleBytes bounds the text the language is told from: the first
// few kilobytes of the customer's own lines say as much as the whole.
const maxSampleBytes = 4096

// minBodyLetters is how many letters of the customer's own lines make the
// subject unnecessary: below it, the subject is read too.
const minBodyLetters = 40

// clearConfidence is how far ahead (0 to 1: the best language's score
// less the second's, over the best's) the best language must be for the
// text to decide over a Content-Language header; clearScore is the least
// score that counts at all (two words of the language).
const (
	clearConfidence = 0.34
	clearScore      = 2
)

// Language returns the language, among offered (ISO 639-1 codes such as
// "de"; a region such as "de-CH" counts as its language), that the
// customer wrote the mail in: the language of their own lines, with quoted
// lines (starting with '>') and everything after an attribution line ("On
// ... wrote:", "Am ... schrieb ...:", an "Original Message" separator) left
// out, so that a German reply quoting an English acknowledgement is
// German. The subject counts when the own lines are short.
// contentLanguage, the Content-Language header, is a hint: it decides when
// it names an offered language and the text is not clear. Without a
// usable answer it returns "en" when offered, else the first offered
// language, else "en".
func Language(subject, text, contentLanguage string, offered []string) string {
	langs := make([]string, 0, len(offered))
	for _, o := range offered {
		if l := primaryTag(o); l != "" && !slices.Contains(langs, l) {
			langs = append(langs, l)
		}
	}
	fallback := DefaultLanguage
	if len(langs) > 0 && !slices.Contains(langs, DefaultLanguage) {
		fallback = langs[0]
	}
	hint := ""
	for _, tag := range strings.Split(contentLanguage, ",") {
		if l := primaryTag(tag); l != "" && slices.Contains(langs, l) {
			hint = l
			break
		}
	}
	sample := OwnLines(text)
	if letters(sample) < minBodyLetters {
		sample = cleanSubject(subject) + "\n" + sample
	}
	lang, confidence := detect(sample)
	switch {
	case lang != "" && slices.Contains(langs, lang) && confidence >= clearConfidence:
		return lang
	case hint != "":
		return hint
	case lang != "" && slices.Contains(langs, lang):
		return lang
	}
	return fallback
}

// primaryTag returns the lower-case primary language subtag of a language
// tag ("de-CH" → "de"), or "" when it is not one.
func primaryTag(tag string) string {
	tag = strings.TrimSpace(tag)
	if i := strings.IndexAny(tag, "-_;"); i >= 0 {
		tag = tag[:i]
	}
	if len(tag) < 2 || len(tag) > 3 {
		return ""
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i] | 0x20; c < 'a' || c > 'z' {
			return ""
		}
	}
	return strings.ToLower(tag)
}

// detect returns the language of sample (ISO 639-1) and how sure it is
// (0 to 1). Chinese, Japanese, Korean and Russian are told by their
// script, languages in Latin letters by their words (latinLanguage).
func detect(sample string) (string, float64) {
	sample = plainWords(sample)
	var latin, cyrillic, kana, hangul, han int
	for _, r := range sample {
		switch {
		case unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r):
			kana++
		case unicode.Is(unicode.Hangul, r):
			hangul++
		case unicode.Is(unicode.Han, r):
			han++
		case unicode.Is(unicode.Cyrillic, r):
			cyrillic++
		case unicode.Is(unicode.Latin, r):
			latin++
		}
	}
	// One CJK character says about as much as two or three letters.
	if cjk := kana + hangul + han; cjk > 0 && 2*cjk >= latin {
		switch {
		case hangul > kana && hangul*4 >= han:
			return "ko", 1
		case kana > 0 && kana*8 >= han:
			return "ja", 1
		case han > 0:
			return "zh", 1
		}
	}
	if cyrillic > latin {
		return "ru", 1
	}
	if latin == 0 {
		return "", 0
	}
	return latinLanguage(sample)
}

// attribution matches a line that introduces quoted text: "On Mon, 1 Dec
// 2026, Support <s@example> wrote:", "Am 01.12.2026 um 10:00 schrieb
// ...:", their French, Spanish, Italian, Dutch and Portuguese forms, and
// the separators of Outlook and others ("-----Original Message-----").
var attribution = regexp.MustCompile(`(?i)^(?:` +
	`on\b.{0,300}\bwrote\s*:?` +
	`|am\b.{0,300}\bschrieb\b.{0,300}` +
	`|le\b.{0,300}\ba [ée]crit\s*:?` +
	`|el\b.{0,300}\bescribi[óo]\s*:?` +
	`|il\b.{0,300}\bha scritto\s*:?` +
	`|op\b.{0,300}\bschreef\b.{0,300}` +
	`|em\b.{0,300}\bescreveu\s*:?` +
	`|-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|forwarded message|weitergeleitete nachricht)\s*-{2,}` +
	`)$`)

// OwnLines returns the lines of a mail's text that its sender wrote: up to
// the first attribution line (an "On ... wrote:" line, also when a client
// wrapped it onto two lines, or an "Original Message" separator) or the
// signature separator ("-- "), without the quoted lines that start with
// '>'. When that leaves nothing but blanks, it returns the quoted text
// without its '>' marks. At most the first 4 KiB of them are returned.
func OwnLines(text string) string {
	var b strings.Builder
	lines := strings.Split(text, "\n")
	for i, line := range lines {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		if line == "-- " || attribution.MatchString(t) ||
			i+1 < len(lines) && len(t) < 300 && attribution.MatchString(t+" "+strings.TrimSpace(lines[i+1])) && !attribution.MatchString(strings.TrimSpace(lines[i+1])) && startsAttribution(t) {
			break
		}
		if strings.HasPrefix(t, ">") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
		if b.Len() >= maxSampleBytes {
			break
		}
	}
	own := b.String()
	if strings.TrimSpace(own) == "" {
		// All quoted: a forward, or a client that quotes the mail it
		// sends. The quoted text is then the best there is.
		b.Reset()
		for _, line := range lines {
			b.WriteString(strings.TrimLeft(strings.TrimSpace(line), "> "))
			b.WriteByte('\n')
			if b.Len() >= maxSampleBytes {
				break
			}
		}
		own = b.String()
	}
	return clip(own, maxSampleBytes)
}

// startsAttribution reports whether a line opens like an attribution line,
// so that two lines are joined to find a wrapped one only then.
func startsAttribution(line string) bool {
	w, _, _ := strings.Cut(strings.ToLower(line), " ")
	switch w {
	case "on", "am", "le", "el", "il", "op", "em":
		return true
	}
	return false
}

// clip cuts s to at most n bytes, dropping a character cut in two (and
// any other invalid UTF-8: a sample need not be exact).
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// subjectPrefix matches the reply and forward markers of mail clients at
// the start of a subject, and ticket tags anywhere ("[TR-104233]").
var subjectPrefix = regexp.MustCompile(`(?i)^(?:\s*(?:re|aw|sv|vs|r|rif|antw|fw|fwd|wg|tr|enc|rv|doorst)\s*(?:\[\d+\])?\s*[:：]\s*)+`)

var ticketTag = regexp.MustCompile(`\[[A-Za-z]{1,10}-\d{1,12}\]`)

// cleanSubject returns the subject without reply markers and ticket tags:
// "AW: Re: [TR-12] Passwort" is "Passwort".
func cleanSubject(s string) string {
	s = subjectPrefix.ReplaceAllString(s, "")
	return strings.TrimSpace(ticketTag.ReplaceAllString(s, " "))
}

// plainWords returns the words of s without addresses and links, which
// say nothing about a language, joined by spaces.
func plainWords(s string) string {
	var b strings.Builder
	for _, f := range strings.Fields(s) {
		if strings.Contains(f, "@") || strings.Contains(f, "://") || strings.HasPrefix(strings.ToLower(f), "www.") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f)
	}
	return b.String()
}

// letters counts the letters of s outside addresses and links.
func letters(s string) int {
	n := 0
	for _, r := range plainWords(s) {
		if unicode.IsLetter(r) {
			n++
		}
	}
	return n
}
