package rules

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFold(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"password", "password"},
		{"PASSWORT", "passwort"},
		{"Forgot My Password!", "forgot my password!"},
		{"Réinitialiser", "reinitialiser"},
		{"RÉINITIALISER", "reinitialiser"},
		{"Re\u0301initialiser", "reinitialiser"},       // combining acute dropped
		{"Re\u0301\u0327initialiser", "reinitialiser"}, // several marks
		{"\u0301password", "password"},                 // a leading mark
		{"contraseña", "contrasena"},
		{"CONTRASEÑA", "contrasena"},
		{"Ça", "ca"},
		{"Não consigo", "nao consigo"},
		{"Qual è", "qual e"},
		{"ÅNGSTRÖM", "angstrom"},
		{"Tiếng Việt", "tieng viet"},
		{"Ἀθῆναι", "αθηναι"},
		{"ПАРОЛЬ", "пароль"},
		{"İstanbul", "istanbul"},
		{"Straße", "straße"}, // no decomposition: kept
		{"Øre", "øre"},       // no decomposition: kept
		{"日本語", "日本語"},
		{"pkcs#12 password", "pkcs#12 password"},
	}
	for _, tt := range tests {
		if got := fold(tt.in); got != tt.want {
			t.Errorf("fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// kwTestDense returns, for every folded byte, the original offset offs maps
// it to.
func kwTestDense(offs foldOffsets, folded []byte, s string) []int32 {
	dense := make([]int32, len(folded))
	for j := range folded {
		dense[j] = int32(offs.orig(j, len(s)))
	}
	return dense
}

// kwTestCheckFoldMap checks that offs maps the first folded byte of every
// character back to the offset of that character in s.
func kwTestCheckFoldMap(t *testing.T, s string, folded []byte, offs foldOffsets) {
	t.Helper()
	j := 0
	for i, r := range s {
		want := fold(string(r))
		for k := 0; k < len(want); k++ {
			if j+k >= len(folded) || folded[j+k] != want[k] {
				t.Fatalf("foldMap(%q): byte %d: folded %q; want %q", s, j+k, folded, want)
			}
		}
		if len(want) > 0 && offs.orig(j, len(s)) != i {
			t.Fatalf("foldMap(%q): folded byte %d maps to %d, want %d", s, j, offs.orig(j, len(s)), i)
		}
		j += len(want)
	}
	if j != len(folded) {
		t.Fatalf("foldMap(%q): %d folded bytes left over", s, len(folded)-j)
	}
}

func TestFoldMap(t *testing.T) {
	// ASCII: no map, offsets unchanged.
	b, offs := foldMap("Reset MY Password")
	if string(b) != "reset my password" || offs != nil {
		t.Errorf("foldMap(ASCII) = %q, %v; want lower case and nil map", b, offs)
	}

	// An explicit example: "Réinitialiser" (é is two bytes at 1..2).
	b, offs = foldMap("Réinitialiser")
	wantOffs := []int32{0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	if string(b) != "reinitialiser" || !slices.Equal(kwTestDense(offs, b, "Réinitialiser"), wantOffs) {
		t.Errorf("foldMap(Réinitialiser) = %q, %v; want %q, %v", b, offs, "reinitialiser", wantOffs)
	}
	// A combining mark folds to nothing; the next byte points past it.
	b, offs = foldMap("Re\u0301i")
	if wantOffs := []int32{0, 1, 4}; string(b) != "rei" || !slices.Equal(kwTestDense(offs, b, "Re\u0301i"), wantOffs) {
		t.Errorf("foldMap(Re\\u0301i) = %q, %v; want %q, %v", b, offs, "rei", wantOffs)
	}

	for _, s := range []string{
		"Réinitialiser",
		"Ça ne marche pas: j'ai oublié mon mot de passe",
		"Re\u0301initialiser le mot de passe",
		"こんにちは、password reset",
		"Tiếng Việt ÅNGSTRÖM Straße İstanbul ПАРОЛЬ",
		"ǅ ǈ ǋ ǲ Ω K Å", // title case and compatibility letters
		"\u0301\u0301x",
	} {
		b, offs := foldMap(s)
		kwTestCheckFoldMap(t, s, b, offs)
		if string(b) != fold(s) {
			t.Errorf("foldMap(%q) = %q, fold = %q", s, b, fold(s))
		}
	}
}

// kwTestIntent is one intent hit: the matched original text and the intent.
type kwTestIntent struct {
	text, intent, lang string
}

func kwTestIntents(p *Policy, text string) []kwTestIntent {
	var out []kwTestIntent
	for _, h := range p.matcher.find(text) {
		for _, k := range h.kw {
			if k.kind == cueIntent {
				out = append(out, kwTestIntent{text[h.start:h.end], p.file.Intents[k.intent].Name, k.lang})
			}
		}
	}
	return out
}

// kwTestKinds returns the matched original texts of hits with a keyword of kind.
func kwTestKinds(p *Policy, text string, kind cueKind) []string {
	var out []string
	for _, h := range p.matcher.find(text) {
		if slices.ContainsFunc(h.kw, func(k keyword) bool { return k.kind == kind }) {
			out = append(out, text[h.start:h.end])
		}
	}
	return out
}

func TestMatcherIntentsByLanguage(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		text string
		want kwTestIntent
	}{
		{"Hi, I forgot my username again.", kwTestIntent{"forgot my username", "username-reminder", "en"}},
		{"Can you tell me the password please?", kwTestIntent{"tell me the password", "password-disclosure", "en"}},
		{"PLEASE RESET MY PASSWORD", kwTestIntent{"RESET MY PASSWORD", "password-reset", "en"}},
		{"I need the PFX password for signing", kwTestIntent{"PFX password", "code-signing", "en"}},

		{"Hallo, ich habe mein Passwort vergessen.", kwTestIntent{"Passwort vergessen", "password-reset", "de"}},
		{"Wie lautet mein Benutzername?", kwTestIntent{"Wie lautet mein Benutzername", "username-reminder", "de"}},
		{"Ich möchte das Zertifikat exportieren", kwTestIntent{"Zertifikat exportieren", "code-signing", "de"}},
		{"Bitte Passwort ZURÜCKSETZEN", kwTestIntent{"Passwort ZURÜCKSETZEN", "password-reset", "de"}},

		{"Bonjour, j'ai oublié mon identifiant.", kwTestIntent{"oublié mon identifiant", "username-reminder", "fr"}},
		{"Pouvez-vous réinitialiser mon mot de passe ?", kwTestIntent{"réinitialiser mon mot de passe", "password-reset", "fr"}},
		{"Quel est mon mot de passe ?", kwTestIntent{"Quel est mon mot de passe", "password-disclosure", "fr"}},

		{"Olvidé mi contraseña", kwTestIntent{"Olvidé mi contraseña", "password-reset", "es"}},
		{"¿Cuál es mi contraseña?", kwTestIntent{"Cuál es mi contraseña", "password-disclosure", "es"}},
		{"olvide mi contrasena", kwTestIntent{"olvide mi contrasena", "password-reset", "es"}}, // typed without accents

		{"Ho dimenticato la password", kwTestIntent{"dimenticato la password", "password-reset", "it"}},
		{"Qual è la mia password?", kwTestIntent{"Qual è la mia password", "password-disclosure", "it"}},
		{"Ho un nome utente dimenticato", kwTestIntent{"nome utente dimenticato", "username-reminder", "it"}},

		{"Ik ben mijn wachtwoord vergeten", kwTestIntent{"wachtwoord vergeten", "password-reset", "nl"}},
		{"Wat is mijn gebruikersnaam?", kwTestIntent{"Wat is mijn gebruikersnaam", "username-reminder", "nl"}},
		{"Wat is mijn wachtwoord?", kwTestIntent{"Wat is mijn wachtwoord", "password-disclosure", "nl"}},

		{"Esqueci minha senha", kwTestIntent{"Esqueci minha senha", "password-reset", "pt"}},
		{"Qual é o meu nome de usuário?", kwTestIntent{"Qual é o meu nome de usuário", "username-reminder", "pt"}},
		{"NÃO CONSIGO ENTRAR", kwTestIntent{"NÃO CONSIGO ENTRAR", "password-reset", "pt"}},
		{"Preciso da senha do certificado", kwTestIntent{"senha do certificado", "code-signing", "pt"}},
	}
	for _, tt := range tests {
		got := kwTestIntents(p, tt.text)
		if !slices.Contains(got, tt.want) {
			t.Errorf("find(%q) intents = %q, want %q among them", tt.text, got, tt.want)
		}
	}
}

func TestMatcherWordStartsAndStems(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name, text string
		kind       cueKind
		want       []string // matched original texts of the kind, in order
	}{
		{"plain", "my password is", cuePassword, []string{"password"}},
		{"inside a word", "xpassword", cuePassword, nil},
		{"after a digit", "2password", cuePassword, nil},
		{"after an accented letter", "épassword", cuePassword, nil},
		{"after a letter and combining mark", "e\u0301password", cuePassword, nil},
		{"after a Cyrillic letter", "иpassword", cuePassword, nil},
		{"after a Greek letter", "αpassword", cuePassword, nil},
		// Han is written without spaces: a word may start after any of it.
		{"after a Han character", "日password", cuePassword, []string{"password"}},
		{"after punctuation", "(password) \"password\" re-password", cuePassword, []string{"password", "password", "password"}},
		{"stem", "passwords and Passwörter", cuePassword, []string{"password", "Passwört"}},
		{"case", "PASSWORD Password pAsSwOrD", cuePassword, []string{"PASSWORD", "Password", "pAsSwOrD"}},
		{"accent-insensitive", "contrasena CONTRASEÑA", cuePassword, []string{"contrasena", "CONTRASEÑA"}},
		{"multi-word cue", "Mot de passe : x", cuePassword, []string{"Mot de passe"}},
		{"username cue", "Benutzername: hans, username bob", cueUsername, []string{"Benutzername", "username"}},
		{"username cue inside a word", "xusername", cueUsername, nil},
	}
	for _, tt := range tests {
		if got := kwTestKinds(p, tt.text, tt.kind); !slices.Equal(got, tt.want) {
			t.Errorf("%s: find(%q) = %q, want %q", tt.name, tt.text, got, tt.want)
		}
	}
	// No keyword of any kind is matched inside a word.
	for _, text := range []string{"preset my password", "xforgot my username", "unreset password", "newpassword", "Vorpasswort"} {
		for _, h := range p.matcher.find(text) {
			if h.start > 0 {
				if r, _ := utf8.DecodeLastRuneInString(text[:h.start]); isWordRune(r) || r >= 'A' && r <= 'Z' {
					t.Errorf("find(%q) matched %q inside a word", text, text[h.start:h.end])
				}
			}
		}
	}
	if got := kwTestIntents(p, "preset my password"); len(got) != 0 {
		t.Errorf("find(preset my password) intents = %q, want none", got)
	}
}

func TestMatcherOffsets(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		text, want string // want: the original text of the intent hit
	}{
		{"Ça ne marche pas: j'ai oublié mon mot de passe", "oublié mon mot de passe"},
		{"Ünïcödé täxt here — password reset", "password reset"},
		{"こんにちは、password reset", "password reset"},
		{"Re\u0301initialiser le mot de passe", "Re\u0301initialiser le mot de passe"},
		{"ÀÉÎÕÜ Réinitialiser mon mot de passe, merci", "Réinitialiser mon mot de passe"},
		{"Déjà: CONTRASEÑA OLVIDADA!", "CONTRASEÑA OLVIDADA"},
		{"¿Dónde? Olvidé mi contraseña", "Olvidé mi contraseña"},
		{"İİİ forgot my username", "forgot my username"},
		{"Größe: Passwort ändern.", "Passwort ändern"},
	}
	for _, tt := range tests {
		hits := p.matcher.find(tt.text)
		var got []string
		for _, h := range hits {
			if h.start < 0 || h.end > len(tt.text) || h.start >= h.end ||
				!utf8.RuneStart(tt.text[h.start]) || h.end < len(tt.text) && !utf8.RuneStart(tt.text[h.end]) {
				t.Errorf("find(%q): hit [%d:%d] is not on character boundaries", tt.text, h.start, h.end)
				continue
			}
			if slices.ContainsFunc(h.kw, func(k keyword) bool { return k.kind == cueIntent }) {
				got = append(got, tt.text[h.start:h.end])
			}
		}
		if !slices.Contains(got, tt.want) {
			t.Errorf("find(%q) intent hits = %q, want %q", tt.text, got, tt.want)
		}
		if !slices.IsSortedFunc(hits, func(a, b hit) int { return a.start - b.start }) {
			t.Errorf("find(%q): hits not in text order", tt.text)
		}
	}
}

func TestMatcherOverlappingAndShared(t *testing.T) {
	p := DefaultPolicy()
	// "reset my password" holds an intent keyword and a password cue.
	hits := p.matcher.find("reset my password")
	var spans [][2]int
	for _, h := range hits {
		spans = append(spans, [2]int{h.start, h.end})
	}
	if want := [][2]int{{0, 17}, {9, 17}}; !slices.Equal(spans, want) {
		t.Errorf("find(reset my password) spans = %v, want %v", spans, want)
	}
	// A keyword in several lists is one hit holding every keyword.
	hits = p.matcher.find("password")
	if len(hits) != 1 {
		t.Fatalf("find(password) = %d hits, want 1", len(hits))
	}
	var langs []string
	for _, k := range hits[0].kw {
		switch k.kind {
		case cuePassword:
			langs = append(langs, k.lang)
		case cueNear: // a password word of the code-signing proximity rule
		default:
			t.Errorf("find(password): keyword %+v is neither a password cue nor a proximity word", k)
		}
	}
	slices.Sort(langs)
	if !slices.Equal(langs, []string{"en", "it"}) {
		t.Errorf("find(password) languages = %q, want [en it]", langs)
	}
	var installs []string
	for _, h := range kwTestIntents(p, "installation") {
		if h.intent != "other" {
			t.Errorf("installation: intent %q, want other", h.intent)
		}
		installs = append(installs, h.lang)
	}
	slices.Sort(installs)
	if !slices.Equal(installs, []string{"de", "en", "fr"}) {
		t.Errorf("installation languages = %q, want [de en fr]", installs)
	}
}

// Every keyword of the default policy is found in its own text, as written
// and in upper case, as the whole text.
func TestMatcherFindsEveryDefaultKeyword(t *testing.T) {
	p := DefaultPolicy()
	type want struct {
		kind   cueKind
		intent int
		lang   string
		text   string
	}
	var all []want
	for i, in := range p.file.Intents {
		for lang, words := range in.Keywords {
			for _, w := range words {
				all = append(all, want{cueIntent, i, lang, w})
			}
		}
	}
	for lang, words := range p.file.Extraction.UsernameCues {
		for _, w := range words {
			all = append(all, want{cueUsername, 0, lang, w})
		}
	}
	for lang, words := range p.file.Redaction.PasswordCues {
		for _, w := range words {
			all = append(all, want{cuePassword, 0, lang, w})
		}
	}
	nearWords := 0
	for i, in := range p.file.Intents {
		for _, n := range in.Near {
			for _, side := range []map[string][]string{n.Words, n.With} {
				for lang, words := range side {
					for _, w := range words {
						all = append(all, want{cueNear, i, lang, w})
						nearWords++
					}
				}
			}
		}
	}
	if nearWords < 100 {
		t.Errorf("only %d proximity words in the default policy", nearWords)
	}
	if len(all) < 300 {
		t.Fatalf("only %d keywords in the default policy", len(all))
	}
	for _, w := range all {
		for _, text := range []string{w.text, strings.ToUpper(w.text), "« " + w.text + " »"} {
			found := false
			for _, h := range p.matcher.find(text) {
				if text[h.start:h.end] != strings.TrimSpace(strings.Trim(text, "« »")) {
					continue
				}
				found = found || slices.ContainsFunc(h.kw, func(k keyword) bool {
					return k.kind == w.kind && k.lang == w.lang && k.text == w.text && (k.kind != cueIntent || k.intent == w.intent)
				})
			}
			if !found {
				t.Errorf("keyword %q (%s, kind %d) not found as the whole of %q", w.text, w.lang, w.kind, text)
			}
		}
	}
}

// Mail wraps lines and customers type typographic apostrophes and
// no-break spaces; a keyword should still be found.
func TestMatcherWhiteSpaceAndApostrophes(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		text string
		want kwTestIntent
	}{
		{"Hello, I forgot my\nusername.", kwTestIntent{"forgot my\nusername", "username-reminder", "en"}},
		{"Hello, I forgot my\r\n username.", kwTestIntent{"forgot my\r\n username", "username-reminder", "en"}},
		{"what is my  password?", kwTestIntent{"what is my  password", "password-disclosure", "en"}},
		{"mot\u00a0de passe oublié", kwTestIntent{"mot\u00a0de passe oublié", "password-reset", "fr"}},
		{"I don’t know my username", kwTestIntent{"don’t know my username", "username-reminder", "en"}},
		{"Quel est mon nom d’utilisateur ?", kwTestIntent{"Quel est mon nom d’utilisateur", "username-reminder", "fr"}},
	}
	var bugs []string
	for _, tt := range tests {
		if got := kwTestIntents(p, tt.text); !slices.Contains(got, tt.want) {
			bugs = append(bugs, strings.ReplaceAll(tt.text, "\n", `\n`))
		}
	}
	// The plain forms are found (so the failures above are about spacing).
	for _, text := range []string{"I forgot my username", "what is my password", "mot de passe oublié", "I don't know my username", "Quel est mon nom d'utilisateur"} {
		if len(kwTestIntents(p, text)) == 0 {
			t.Errorf("find(%q) found no intent", text)
		}
	}
	if len(bugs) > 0 {
		t.Errorf("fixed bug regressed: multi-word keywords are not found across a line break, repeated or no-break space, or with a typographic apostrophe (’): %q", bugs)
	}
}

// The keywords of one pattern come out in the same order every time the
// policy is compiled: decide.go's intent reason names the first keyword of
// the best intent ("reembolso" is Spanish and Portuguese).
func TestMatcherDeterministic(t *testing.T) {
	f := DefaultPolicy().file
	first := newMatcher(&f).keywords
	for range 20 {
		if again := newMatcher(&f).keywords; !reflect.DeepEqual(again, first) {
			for i := range first {
				if !reflect.DeepEqual(again[i], first[i]) {
					t.Errorf("fixed bug regressed: newMatcher orders the keywords of a pattern by map iteration (languages): %v, then %v", first[i], again[i])
				}
			}
		}
	}
}

// Customers in Japan and Korea type on keyboards that write fullwidth
// Latin letters and halfwidth kana; folding makes them the letters the
// keywords are written in. Hangul syllables and kana with their marks
// fold the same in a keyword and in a mail.
func TestFoldWidthAndScripts(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Ｐａｓｓｗｏｒｄ：", "password:"},
		{"ＰＦＸ", "pfx"},
		{"비밀번호", "비밀번호"},
		{"пароль", "пароль"},
		{"HASŁO", "hasło"},
		{"ŞİFRE", "sifre"},
		{"şifrem", "sifrem"},
		{"DOSYASI dosyası", "dosyasi dosyasi"}, // Turkish dotless i, typed with or without it
		{"ΚΩΔΙΚΌΣ κωδικός", "κωδικοσ κωδικοσ"}, // Greek final sigma
		{"密碼", "密碼"},
	}
	for _, tt := range tests {
		if got := fold(tt.in); got != tt.want {
			t.Errorf("fold(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Halfwidth kana with separate voicing marks are the fullwidth word.
	if a, b := fold("ﾊﾟｽﾜｰﾄﾞ"), fold("パスワード"); a != b {
		t.Errorf("fold(ﾊﾟｽﾜｰﾄﾞ) = %q, fold(パスワード) = %q; want the same", a, b)
	}
	for _, s := range []string{"Ｐａｓｓｗｏｒｄ：x", "ﾊﾟｽﾜｰﾄﾞ：x", "제 비밀번호는 x", "パスワード　は"} {
		b, offs := foldMap(s)
		if string(b) != fold(s) {
			t.Errorf("foldMap(%q) = %q, fold = %q", s, b, fold(s))
		}
		if len(b) > len(s) {
			t.Errorf("foldMap(%q) is longer than its input", s)
		}
		_ = offs
	}
}

// Japanese and Chinese have no spaces between words, and Korean glues
// particles to nouns: a keyword in those scripts matches anywhere, and any
// keyword matches right after a character of those scripts.
func TestMatcherSpacelessScripts(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name, text string
		kind       cueKind
		want       []string
	}{
		{"ja after kana", "新しいパスワードは", cuePassword, []string{"パスワード"}},
		{"ja after kanji", "私のパスワード：x", cuePassword, []string{"パスワード"}},
		{"ja after Latin", "IDパスワード", cuePassword, []string{"パスワード"}},
		{"ja halfwidth", "ﾊﾟｽﾜｰﾄﾞ：x", cuePassword, []string{"ﾊﾟｽﾜｰﾄﾞ"}},
		{"ja pin", "暗証番号は1234", cuePassword, []string{"暗証番号"}},
		{"zh simplified", "我的密码是abc", cuePassword, []string{"密码"}},
		{"zh traditional", "我的密碼為abc", cuePassword, []string{"密碼"}},
		{"zh kouling", "口令：abc", cuePassword, []string{"口令"}},
		{"ko particle", "제 비밀번호는 abc", cuePassword, []string{"비밀번호"}},
		{"ko compound", "새비밀번호: abc", cuePassword, []string{"비밀번호"}},
		{"ko other word", "오후에 영화를 봤어요", cuePassword, nil},
		{"ru", "Мой пароль: abc", cuePassword, []string{"парол"}},
		{"ru inflected", "Пароля нет", cuePassword, []string{"Парол"}},
		{"pl", "Moje hasło to abc", cuePassword, []string{"hasło"}},
		{"tr stem", "Şifrem: abc", cuePassword, []string{"Şifre"}},
		{"fullwidth Latin", "Ｐａｓｓｗｏｒｄ：abc", cuePassword, []string{"Ｐａｓｓｗｏｒｄ"}},
		{"Latin after kana", "私のpfxファイル", cueNear, []string{"pfx"}},
		{"Latin inside a Latin word still not", "xpassword", cuePassword, nil},
		{"Cyrillic inside a word still not", "непароль", cuePassword, nil},
	}
	for _, tt := range tests {
		if got := kwTestKinds(p, tt.text, tt.kind); !slices.Equal(got, tt.want) {
			t.Errorf("%s: find(%q) = %q, want %q", tt.name, tt.text, got, tt.want)
		}
	}
}

// A keyword that ends in a digit is no stem of a longer number: "p12" is
// not in the reference "P12345678".
func TestMatcherDigitsEndNumbers(t *testing.T) {
	p := DefaultPolicy()
	for _, tt := range []struct {
		text string
		want []string
	}{
		{"our p12 file", []string{"p12"}},
		{"cert.p12, please", []string{"p12"}},
		{"reference P12345678", nil},
		{"pkcs12", []string{"pkcs12"}},
		{"pkcs123", nil},
	} {
		if got := kwTestKinds(p, tt.text, cueNear); !slices.Equal(got, tt.want) {
			t.Errorf("find(%q) near words = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// A password word near a code-signing word is the code-signing intent,
// whichever comes first and in whichever language; a password near a
// plain certificate is not.
func TestIntentNear(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct{ text, want string }{
		// English, both orders.
		{"Subject\nI need to change the password on my .pfx", "code-signing"},
		{"Subject\nwhat is the password of my PFX file?", "code-signing"},
		{"Subject\nplease set a new password on the p12", "code-signing"},
		{"Subject\nThe PKCS#12 we exported needs a new passphrase", "code-signing"},
		{"Subject\nour Authenticode certificate: the password is lost", "code-signing"},
		{"Subject\nthe code signing key store has a password we forgot", "code-signing"},
		{"Subject\nReset the password of our codesigning cert", "code-signing"},
		{"Subject\nthe certificate file asks for a password", "code-signing"},
		{"Subject\nour signing certificate password expired", "code-signing"},
		{"Re: PFX\nplease reset the password", "code-signing"}, // subject and body
		{"Subject\nPASSWORD OF MY PFX", "code-signing"},
		// German.
		{"Betreff\nich möchte das Kennwort meiner PFX-Datei ändern", "code-signing"},
		{"Betreff\nUnsere Zertifikatsdatei hat ein Passwort, das wir ändern müssen", "code-signing"},
		{"Betreff\nneues Passwort für das Codesignatur-Zertifikat", "code-signing"},
		// French.
		{"Objet\nchanger le mot de passe de mon fichier PFX", "code-signing"},
		{"Objet\nle fichier du certificat demande un mot de passe", "code-signing"},
		{"Objet\nle certificat de signature de code : nouveau mot de passe", "code-signing"},
		// Spanish.
		{"Asunto\ncambiar la contraseña de mi archivo PFX", "code-signing"},
		{"Asunto\npara la firma de código, ¿cómo pongo una nueva contraseña?", "code-signing"},
		{"Asunto\nla clave del archivo del certificado", "code-signing"},
		// Italian.
		{"Oggetto\ncambiare la password del file .pfx", "code-signing"},
		{"Oggetto\nil certificato per la firma del codice chiede una password", "code-signing"},
		// Dutch.
		{"Onderwerp\nhet wachtwoord van ons p12-bestand wijzigen", "code-signing"},
		{"Onderwerp\nons certificaatbestand vraagt om een wachtwoord", "code-signing"},
		// Portuguese.
		{"Assunto\nalterar a senha do arquivo PFX", "code-signing"},
		{"Assunto\no ficheiro do certificado pede uma palavra-passe", "code-signing"},
		{"Assunto\npara a assinatura de código, qual é a nova senha?", "code-signing"},
		// Japanese, no spaces, both orders.
		{"件名\nコード署名証明書のパスワードを変更したいです。", "code-signing"},
		{"件名\nパスワードを忘れてしまったので、証明書ファイルを開けません。", "code-signing"},
		{"件名\nコードサイニング証明書のパスワード", "code-signing"},
		{"件名\nPFXファイルのパスワードを再設定できますか。", "code-signing"},
		// Private keys, key files and signing tokens.
		{"Subject\nI need a new password for the private key of our signing setup", "code-signing"},
		{"Subject\nthe SafeNet token PIN and password expired", "code-signing"},
		{"Subject\nour old .pvk file has a password", "code-signing"},
		{"Subject\njarsigner asks for the keystore password", "code-signing"},
		// More languages.
		{"主题\n我们的代码签名证书的密码忘了", "code-signing"},
		{"제목\n코드 서명 인증서 비밀번호를 변경하고 싶습니다", "code-signing"},
		{"Тема\nКак изменить пароль от файла сертификата .pfx?", "code-signing"},
		{"Temat\nzapomniałem hasła do pliku certyfikatu", "code-signing"},
		{"Konu\nkod imzalama sertifikasının şifresini değiştirmek istiyorum", "code-signing"},
		// A password and a certificate alone: an account reset.
		{"Subject\nreset the password of my account to renew my certificate", "password-reset"},
		{"Subject\nI forgot my password for the certificate console", "password-reset"},
		{"Subject\nnew password please, my SSL certificate expires", "password-reset"},
		{"Betreff\nPasswort vergessen, SSL-Zertifikat läuft ab", "password-reset"},
		{"件名\nアカウントのパスワードを忘れました。SSL証明書を更新したいです。", "password-reset"},
		// Too far apart, or in another paragraph.
		{"Subject\nplease reset my password.\n\nAlso: our pfx renewal is due.", "password-reset"},
		{"Subject\nplease reset my password.\r\n \r\nAlso: our pfx renewal is due.", "password-reset"},
		{"Subject\nplease reset my password. " + strings.Repeat("We are in a hurry. ", 5) + "The pfx is fine.", "password-reset"},
		// A number that starts like a code-signing word is none.
		{"Subject\nPassword reset please, our reference is P12345678.", "password-reset"},
	}
	for _, tt := range tests {
		got, why := p.intent(p.matcher.find(tt.text))
		if got != tt.want {
			t.Errorf("intent(%q) = %s (%s), want %s", tt.text, got, why, tt.want)
		}
	}
	// The reason names both words, their languages and the distance.
	_, why := p.intent(p.matcher.find("Subject\nchange the password on my .pfx"))
	for _, s := range []string{`"password"`, `"pfx"`, "characters"} {
		if !strings.Contains(why, s) {
			t.Errorf("reason %q does not name %s", why, s)
		}
	}
}

// An attacker who repeats the words cannot make the proximity search
// slow: it is linear in the hits.
func TestIntentNearManyWords(t *testing.T) {
	p := DefaultPolicy()
	// Commas: "password pfx" is an Italian keyword, across the break too.
	text := strings.Repeat("password, ", 20000) + "\n\n" + strings.Repeat("pfx, ", 20000)
	hits := p.matcher.find(text)
	if got, _ := p.intent(hits); got != "password-reset" {
		t.Errorf("intent = %s, want password-reset (the words are in different paragraphs)", got)
	}
	pairs := 0
	for _, h := range hits {
		if slices.ContainsFunc(h.kw, func(k keyword) bool { return k.kind == cueNearPair }) {
			pairs++
		}
	}
	if pairs != 0 {
		t.Errorf("%d pairs across a paragraph break", pairs)
	}
	text = strings.Repeat("password, pfx, ", 20000)
	hits = p.matcher.find(text)
	pairs = 0
	for _, h := range hits {
		if slices.ContainsFunc(h.kw, func(k keyword) bool { return k.kind == cueNearPair }) {
			pairs++
		}
	}
	if pairs != 1 {
		t.Errorf("%d pair hits, want 1 (one per rule is enough)", pairs)
	}
}
