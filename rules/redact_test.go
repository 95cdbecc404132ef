package rules

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ticketrouter/ticketrouter/rules/address"
)

// redactTest is one text given to Policy.redact: the first line is the
// subject, as Decide joins them.
type redactTest struct {
	name    string
	text    string
	secrets []string // none may survive
	keep    []string // each must survive
}

func runRedactTests(t *testing.T, tests []redactTest) {
	t.Helper()
	p := DefaultPolicy()
	for _, tt := range tests {
		got, _ := p.redact(tt.text, p.matcher.find(tt.text))
		for _, s := range tt.secrets {
			if strings.Contains(got, s) {
				t.Errorf("%s: redact(%q) = %q: %q survives", tt.name, tt.text, got, s)
			}
		}
		for _, k := range tt.keep {
			if !strings.Contains(got, k) {
				t.Errorf("%s: redact(%q) = %q: %q is lost", tt.name, tt.text, got, k)
			}
		}
	}
}

// The whole value after a cue is a secret, to the end of its line: people
// choose pass phrases.
func TestRedactMultiWordValues(t *testing.T) {
	runRedactTests(t, []redactTest{
		{"colon", "S\nPassword: correct horse battery staple\nbye", []string{"correct", "horse", "staple"}, []string{"Password: [redacted]\nbye"}},
		{"colon no space", "S\npassword:correct horse", []string{"correct", "horse"}, []string{"password:[redacted]"}},
		{"equals", "S\npwd = two words", []string{"two", "words"}, []string{"pwd = [redacted]"}},
		{"is", "S\nmy password is Blue Ocean 77 and it fails\nthanks", []string{"Blue", "Ocean", "77"}, []string{"my password is [redacted]\nthanks"}},
		{"is colon", "S\nthe password is: not so secret", []string{"not so secret"}, []string{"the password is: [redacted]"}},
		{"was", "S\nold passphrase was Summer Rain 2023", []string{"Summer", "Rain"}, nil},
		{"new password cue", "S\nNew password: Tr0ub4dor &3", []string{"Tr0ub4dor", "&3"}, nil},
		{"trailing blanks kept out", "S\nPassword: a b c   \nnext", []string{"a b c"}, []string{"Password: [redacted]   \nnext"}},
		{"CRLF", "S\r\nPassword: a b c\r\nnext", []string{"a b c"}, []string{"[redacted]\r\nnext"}},
		{"de lautet", "S\nMein Passwort lautet Mein Hund heisst Bello\nund geht nicht", []string{"Hund", "Bello"}, []string{"und geht nicht"}},
		{"de ist", "S\nDas Kennwort ist Sommer Sonne 99", []string{"Sommer", "Sonne"}, nil},
		{"fr", "S\nmot de passe : le petit chat 12", []string{"petit chat"}, nil},
		{"fr est", "S\nmon mot de passe est Belle Ile 56", []string{"Belle", "Ile"}, nil},
		{"es", "S\nmi contraseña es Sol y Luna 7", []string{"Sol y Luna"}, nil},
		{"it", "S\nla password è Ponte Vecchio 3", []string{"Ponte", "Vecchio"}, nil},
		{"nl", "S\nmijn wachtwoord: Tulp en Molen 8", []string{"Tulp", "Molen"}, nil},
		{"pt", "S\nminha senha é Rio Azul 40", []string{"Rio", "Azul"}, nil},
		{"quoted", "S\nI typed the password \"Hunter 2 Hunter\" three times", []string{"Hunter 2 Hunter"}, []string{"three times"}},
		{"quoted typographic", "S\nthe password “Blue Moon” fails", []string{"Blue Moon"}, []string{"fails"}},
		{"quoted guillemets", "S\nle mot de passe « Tour Eiffel » ne marche pas", []string{"Tour Eiffel"}, []string{"ne marche pas"}},
		{"two cues on a line", "S\nold password: aaa bbb, new password: ccc ddd", []string{"aaa", "bbb", "ccc", "ddd"}, nil},
		{"stem", "S\npasswords: one two", []string{"one two"}, nil},
		{"subject itself", "Password: hunter2 now\nbody", []string{"hunter2"}, []string{"\nbody"}},
		{"subject cue, body word", "New password = abc123xyz\nx", []string{"abc123xyz"}, []string{"\nx"}},
	})
}

// A cue (with its colon or connector) that ends its line announces the
// value on the next non-empty line.
func TestRedactNextLine(t *testing.T) {
	runRedactTests(t, []redactTest{
		{"colon", "S\nPassword:\nhunter2 two\nbye", []string{"hunter2", "two"}, []string{"Password:\n[redacted]\nbye"}},
		{"colon blank lines", "S\nMy new password:\n\n   \n    Tr0ub4dor&3 yes\n\nThanks", []string{"Tr0ub4dor", "yes"}, []string{"Thanks"}},
		{"colon CRLF", "S\r\nPassword:\r\n\r\nhunter2\r\nbye", []string{"hunter2"}, []string{"bye"}},
		{"colon trailing space", "S\nPassword:   \nhunter2", []string{"hunter2"}, nil},
		{"is", "S\nour old passphrase was\nMarmalade Sky 42\nbut it expired", []string{"Marmalade", "Sky 42"}, []string{"but it expired"}},
		{"is colon", "S\nthe password is:\nsecret words", []string{"secret words"}, nil},
		{"line ends in a colon", "S\nmy password is the following:\n  Zebra Crossing 5\nthanks", []string{"Zebra", "Crossing"}, []string{"thanks"}},
		{"line ends in a colon, no connector", "S\nthe password of the pfx is below:\n\n  abc def\n\nregards", []string{"abc def"}, []string{"regards"}},
		{"a sentence that ends in a colon announces nothing", "S\nmy password is not working, the error says:\nERR 42 access denied", nil,
			[]string{"my password is not working, the error says:\nERR 42 access denied"}},
		{"de", "S\nDas Passwort lautet:\nGeheim Eins", []string{"Geheim", "Eins"}, nil},
		{"ja", "S\nパスワード：\n　Sakura 2024", []string{"Sakura"}, nil},
		{"zh", "S\n口令：\n  Great Wall 8848", []string{"Great Wall", "8848"}, nil},
		{"ru", "S\nПароль:\nNeva 77", []string{"Neva"}, nil},
		{"label alone", "S\nUsername\njsmith\nPassword\nhunter2 two\n", []string{"hunter2", "two"}, []string{"jsmith", "Password\n[redacted]"}},
		{"label alone, quoted reply", "S\n> New password\n> Tr0ub4dor\n", []string{"Tr0ub4dor"}, nil},
		{"label alone, stem", "S\n  Passwords  \n\n  one two\n", []string{"one two"}, nil},
		{"label alone as subject", "Password\nHello team", nil, []string{"Hello team"}},
		{"label in a sentence", "S\nI forgot my password\nThanks, Ann", nil, []string{"Thanks, Ann"}},
		{"harmless on the next line", "S\nmy password is\nexpired, please reset", nil, []string{"expired, please reset"}},
		// The subject never runs into the body.
		{"subject colon", "My password:\nHello team,\nplease call", nil, []string{"Hello team,", "please call"}},
		{"subject connector", "the password is\nHello team", nil, []string{"Hello team"}},
		{"subject fullwidth colon", "パスワード：\nこんにちは", nil, []string{"こんにちは"}},
		// Nothing after the cue at all.
		{"end of text", "S\nPassword:", nil, []string{"Password:"}},
		{"end of text blank", "S\nPassword:\n\n  \n", nil, []string{"Password:"}},
	})
}

// Cues of languages the first list lacked, with their particles and
// connectors, fullwidth colons and stems.
func TestRedactLanguages(t *testing.T) {
	runRedactTests(t, []redactTest{
		// Japanese.
		{"ja colon", "S\nパスワード：Sakura 2024 Haru", []string{"Sakura", "Haru"}, []string{"パスワード："}},
		{"ja ascii colon", "S\nパスワード: Sakura", []string{"Sakura"}, nil},
		{"ja wa", "S\n新しいパスワードはMomiji#77です。", []string{"Momiji"}, []string{"新しいパスワードは"}},
		{"ja wa space", "S\nパスワードは Momiji 77 です", []string{"Momiji"}, nil},
		{"ja pin", "S\n暗証番号は 4711 です", []string{"4711"}, nil},
		{"ja halfwidth", "S\nﾊﾟｽﾜｰﾄﾞ：Fuji3776", []string{"Fuji3776"}, nil},
		{"ja ideographic space", "S\nパスワード　：　Fuji 3776", []string{"Fuji"}, nil},
		{"ja fullwidth latin cue", "S\nＰａｓｓｗｏｒｄ：Fuji-San-3776 Kita", []string{"Fuji", "Kita"}, nil},
		{"ja fullwidth equals", "S\nパスワード＝Fuji3776", []string{"Fuji3776"}, nil},
		// Chinese.
		{"zh shi", "S\n我的密码是Zhang2024!，请帮我重置。", []string{"Zhang2024"}, []string{"我的密码是"}},
		{"zh colon", "S\n密碼：Taipei101x", []string{"Taipei101x"}, nil},
		{"zh wei", "S\n新密码为 Hello World 1", []string{"Hello World"}, nil},
		{"zh kouling", "S\n口令是abc 123", []string{"abc 123"}, nil},
		// Korean.
		{"ko neun", "S\n제 비밀번호는 Seoul2024! 입니다.", []string{"Seoul2024"}, []string{"제 비밀번호는"}},
		{"ko colon", "S\n패스워드: Busan #88 bay", []string{"Busan", "bay"}, nil},
		{"ko amho", "S\n암호는 Jeju99 입니다", []string{"Jeju99"}, nil},
		{"ko compound", "S\n새비밀번호: Daegu 53", []string{"Daegu"}, nil},
		// Russian.
		{"ru dash", "S\nМой пароль — Moskva 2024 Kreml", []string{"Moskva", "Kreml"}, []string{"Мой пароль — [redacted]"}},
		{"ru hyphen", "S\nпароль - Moskva 2024", []string{"Moskva"}, nil},
		{"ru colon", "S\nПароль: Neva77", []string{"Neva77"}, nil},
		{"ru eto", "S\nмой пароль это Volga 12", []string{"Volga"}, nil},
		{"ru ot", "S\nпароль от кабинета: Ural 7", []string{"Ural"}, nil},
		// Polish.
		{"pl to", "S\nMoje hasło to Krakow#2024 Wawel", []string{"Krakow", "Wawel"}, nil},
		{"pl colon", "S\nHasło: Wisla77", []string{"Wisla77"}, nil},
		{"pl no accents", "S\nhaslo: Wisla77", []string{"Wisla77"}, nil},
		{"pl jest", "S\nmoje hasło jest Gdansk 1", []string{"Gdansk"}, nil},
		{"pl do", "S\nhasło do konta: Odra 5", []string{"Odra"}, nil},
		// Turkish.
		{"tr stem", "S\nŞifrem: Istanbul 2024 Galata", []string{"Istanbul", "Galata"}, nil},
		{"tr your", "S\nşifreniz: Izmir 35", []string{"Izmir"}, nil},
		{"tr parola", "S\nparola = Bosphorus9", []string{"Bosphorus9"}, nil},
		{"tr upper", "S\nŞİFRE: Ankara06", []string{"Ankara06"}, nil},
		// More languages, with a sign.
		{"cs", "S\nHeslo: Praha 1", []string{"Praha"}, nil},
		{"sv", "S\nLösenord: Stockholm 8", []string{"Stockholm"}, nil},
		{"no", "S\npassord: Oslo 9", []string{"Oslo"}, nil},
		{"da", "S\nadgangskode: Aarhus 3", []string{"Aarhus"}, nil},
		{"fi", "S\nsalasana: Helsinki 5", []string{"Helsinki"}, nil},
		{"hu", "S\njelszó: Buda Pest", []string{"Buda"}, nil},
		{"el", "S\nΚωδικός: Athina 2", []string{"Athina"}, nil},
		{"uk", "S\nпароль: Kyiv 44", []string{"Kyiv"}, nil},
		{"ar", "S\nكلمة المرور: Cairo 20", []string{"Cairo"}, nil},
		{"he", "S\nסיסמה: Haifa 4", []string{"Haifa"}, nil},
		{"vi", "S\nMật khẩu: Hanoi 84", []string{"Hanoi"}, nil},
		{"id", "S\nkata sandi: Jakarta 62", []string{"Jakarta"}, nil},
		{"th", "S\nรหัสผ่าน: Bangkok 66", []string{"Bangkok"}, nil},
		{"en pw", "S\nuser: jsmith pw: Hunter 22", []string{"Hunter 22"}, nil},
		{"en pin", "S\nthe token PIN: 12345678", []string{"12345678"}, nil},
		{"en typo", "S\npasword: Hunter 22", []string{"Hunter 22"}, nil},
		// A phrase between the cue and its connector.
		{"en for the portal", "S\nThe password for the portal user jsmith is Winter Is Coming 9", []string{"Winter"}, []string{"The password for the portal user jsmith is"}},
		{"en for colon", "S\npassword for user jsmith: Winter 9", []string{"Winter"}, []string{"password for user jsmith:"}},
		{"en to the portal", "S\nthe password to the portal is Spring 4", []string{"Spring"}, nil},
		{"en of the pfx", "S\nthe password of the pfx is Autumn 5", []string{"Autumn"}, nil},
		{"de für", "S\ndas Passwort für das Portal lautet Herbst 6", []string{"Herbst"}, nil},
		{"fr du", "S\nle mot de passe du certificat est Hiver 7", []string{"Hiver"}, nil},
		{"es de", "S\nla contraseña de mi cuenta es Verano 8", []string{"Verano"}, nil},
		{"nl voor", "S\nhet wachtwoord voor mijn account is Lente 9", []string{"Lente"}, nil},
		{"pt da", "S\na senha da minha conta é Outono 10", []string{"Outono"}, nil},
	})
}

// Ordinary text after a cue survives: harmless words after a connector,
// words that only start like a cue, phrases that are not values.
func TestRedactKeepsOrdinaryText(t *testing.T) {
	keep := func(name, text string) redactTest {
		return redactTest{name, text, nil, []string{text[strings.IndexByte(text, '\n')+1:]}}
	}
	runRedactTests(t, []redactTest{
		keep("expired", "S\nmy password is expired and I cannot log in"),
		keep("not", "S\nmy password is not accepted any more"),
		keep("de abgelaufen", "S\nmein Passwort ist abgelaufen, bitte helfen"),
		keep("de falsch", "S\ndas Kennwort ist falsch"),
		keep("fr", "S\nmon mot de passe est expiré depuis hier"),
		keep("es", "S\nmi contraseña es incorrecta otra vez"),
		keep("qualifier then harmless", "S\nthe password for my account is expired again"),
		keep("to harmless", "S\nthe password to my account is not working"),
		keep("reset colon", "S\nPassword reset: order 5400001 please"),
		keep("policy", "S\nOur password policy needs 12 characters."),
		keep("plural", "S\nPasswords are hard."),
		keep("hyphenated", "S\nThe password-protected file is attached."),
		keep("long compound", "S\nPasswortrichtlinie: mindestens 12 Zeichen"),
		keep("apostrophe", "S\nthe password's length isn't enough"),
		keep("ja forgot", "S\nパスワードを忘れました。"),
		keep("ja expired", "S\nパスワードは期限切れです。"),
		keep("ja what", "S\nパスワードは何ですか？"),
		keep("zh what", "S\n我的密码是什么？"),
		keep("zh whether", "S\n密码是否正确？"),
		keep("ko what", "S\n제 비밀번호는 무엇인가요?"),
		keep("ru not", "S\nмой пароль — не работает"),
		keep("pl not", "S\nhasło to nie problem"),
		keep("no cue", "S\nHello, please call me back on Monday."),
		keep("pink", "S\nThe account is pink and the passport is valid."),
		keep("passed", "S\nThe test passed yesterday."),
		keep("dash please", "S\nPassword - please help, I cannot log in"),
		keep("has been", "S\nyour password has been reset"),
		keep("account reset", "S\nPlease reset the password for acmecorp.example, order 5400001"),
		keep("clause after the phrase", "S\nPlease reset the password of admin@acmecorp.example; the order form is attached."),
		keep("sentence after the phrase", "S\nI need the password for the portal. It is urgent, thanks"),
		keep("comma after the phrase", "S\nthe password for my account, which is old, stopped working"),
	})
}

// FuzzRedact: redaction never panics, keeps valid UTF-8 valid, and never
// removes a line break outside a private key block (Decide cuts the
// subject from the body at the first one).
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"S\nPassword: a b c\nbye", "S\nPassword:\n\nhunter2", "My password:\nHello", "S\nパスワードはabc",
		"S\n密码：\n x", "S\nthe password \"a b\" x", "S\npassword for the portal is x", "S\nПароль — x",
		"S\nPassword\n> x", "S\nŞifrem: x", "S\nＰａｓｓｗｏｒｄ：x", "S\npassword is the following:\nx",
		"S\npassword「", "S\npassword is\n", "password\n", "S\n-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----",
	} {
		f.Add(s)
	}
	p := DefaultPolicy()
	f.Fuzz(func(t *testing.T, text string) {
		got, key := p.redact(text, p.matcher.find(text))
		if utf8.ValidString(text) && !utf8.ValidString(got) {
			t.Errorf("redact(%q) = %q: invalid UTF-8", text, got)
		}
		if !key && strings.Count(got, "\n") != strings.Count(text, "\n") {
			t.Errorf("redact(%q) = %q: line breaks removed", text, got)
		}
	})
}

// BenchmarkRedactHostile measures redaction of a 256 KB line or text
// that repeats a cue an attacker chose: each must stay linear (compare
// the ns/op with the mail's size), never read a line once per cue.
func BenchmarkRedactHostile(b *testing.B) {
	p := DefaultPolicy()
	for _, unit := range []string{
		"password is not, ", "password \"a\" ", "password.", "password for ", "Password: ",
		"password for the user name is not, ", "password is\n", "password\n\n", "パスワードは何", "密码是否",
	} {
		text := "S\n" + strings.Repeat(unit, 256<<10/len(unit))
		hits := p.matcher.find(text)
		b.Run(strings.NewReplacer("\n", `\n`, " ", "_", `"`, "q").Replace(unit), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				p.redact(text, hits)
			}
		})
	}
}

// TestContainsWord: a whole word, ASCII letters in any case, other bytes
// as they are; and the same answers as lower-casing the text first, on
// random texts.
func TestContainsWord(t *testing.T) {
	for _, tc := range []struct {
		text, word string
		want       bool
	}{
		{"user JSmith.", "jsmith", true},
		{"user jsmith2", "jsmith", false},
		{"user j\u017fmith", "jsmith", false},
		{"xjsmith, then jsmith", "jsmith", true},
		{"xjsmith, then jsmithy", "jsmith", false},
		{"jsmith", "JSmith", true},
		{"MüLLER", "Müller", true},
		{"MÜLLER", "müller", false},
		{"js", "jsmith", false},
		{"anything", "", false},
		{"a.b@example.com wrote", "A.B@EXAMPLE.COM", true},
	} {
		if got := containsWord(tc.text, tc.word); got != tc.want {
			t.Errorf("containsWord(%q, %q) = %v, want %v", tc.text, tc.word, got, tc.want)
		}
	}
	lowered := func(text, word string) bool { // the definition
		lw, lt := address.LowerASCII(word), address.LowerASCII(text)
		for pos := 0; ; {
			i := strings.Index(lt[pos:], lw)
			if i < 0 {
				return false
			}
			start, end := pos+i, pos+i+len(lw)
			before, _ := utf8.DecodeLastRuneInString(lt[:start])
			after, _ := utf8.DecodeRuneInString(lt[end:])
			if !isUsernameRune(before) && !isUsernameRune(after) {
				return true
			}
			pos = start + 1
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "A", "b", "B", " ", "-", "ä", "Ä", "1", "@"}
	pick := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		text, word := pick(r.IntN(12)), pick(1+r.IntN(3))
		if got, want := containsWord(text, word), lowered(text, word); got != want {
			t.Fatalf("containsWord(%q, %q) = %v, lower-casing the text says %v", text, word, got, want)
		}
	}
}
