package answer

import (
	"strings"
	"unicode"
)

// Language detection by words rather than a statistical library: the
// trigram detector tried (whatlanggo) took clear Spanish, French and
// Polish sentences of a support mail for Portuguese, Italian and
// Esperanto, and the better one (lingua-go) embeds models of hundreds of
// megabytes and needs tens of them in memory. Support mail is short and
// says the same few things (greetings, thanks, "password", "forgot",
// "account"), so the common words of each language, and the letters only
// one language uses, tell it reliably and cheaply.

// commonWords are, per language written in Latin letters, frequent words
// and the words of support mail, lower case. A word listed for several
// languages counts for each.
var commonWords = map[string]string{
	"en": "the and is are was be been my i i'm i've you your to of for it this that with have has had not " +
		"can cannot can't don't do does please thanks thank hello hi dear regards best would could me we our " +
		"on in from password forgot forgotten account help reset order login username sincerely kind unable " +
		"need will there what how when which because but any an",
	"de": "der die das dem den des und ist ich nicht mein meine meinen meinem mich mir sie ihr ihre ihnen bitte " +
		"danke vielen dank hallo guten tag grüße gruß grüßen freundlichen mit für von zu zum auf ein eine einen " +
		"kann können habe hat haben wir es auch noch wie was passwort kennwort vergessen konto zugang " +
		"bestellnummer benutzername anmelden zurücksetzen sehr geehrte geehrter geehrtes herr frau leider " +
		"hier ist sind wurde mfg liebe lieber damen herren wäre würde",
	"fr": "le la les un une des du de et est je j'ai mon ma mes vous votre vos pour pas ne que qui avec sur dans " +
		"bonjour bonsoir merci cordialement madame monsieur mot passe oublié compte pouvez pourriez commande " +
		"réinitialiser connecter suis ai il elle nous au aux ce cette voici salutations beaucoup numéro " +
		"d'avance svp n'arrive plus",
	"es": "el la los las un una y es de del que mi mis su sus por para con no puedo olvidé contraseña cuenta hola " +
		"gracias saludos buenos días buenas tardes estimados estimado usted ustedes pueden ayudar ayuda pedido " +
		"usuario tengo acceder como pero muchas atentamente favor está este esta porque me",
	"it": "il lo la gli le un una di del della dei e è che non mi mio mia per con sono ho ciao buongiorno " +
		"buonasera grazie saluti cordiali gentile potete aiutarmi riesco accedere dimenticato dimenticata " +
		"password account ordine utente nome vorrei come ma anche distinti mille",
	"nl": "de het een en is ik mijn niet van voor met op te dat die je u uw kan kunnen jullie wachtwoord vergeten " +
		"inloggen bedankt dank groet groeten vriendelijke hallo goedemorgen goedemiddag beste geachte graag " +
		"bestelling gebruikersnaam heb hebben meer mij me wil zou ben bij naar",
	"pt": "o a os as um uma de do da dos das e é que não meu minha para com por em no na olá obrigado obrigada " +
		"bom dia boa tarde senha esqueci conta consigo acessar podem ajudar pedido usuário utilizador " +
		"atenciosamente cumprimentos você está tenho palavra-passe me",
	"pl": "i w z na nie się jest to do że mój moje moja mojego hasło hasła haslo hasla konto konta dzień dobry " +
		"dziękuję dziekuje pozdrawiam witam proszę prosze o pomoc mam mogę moge zapomniałem zapomniałam " +
		"zamówienie czy jak ale dla po pan pani",
	"tr": "ve bir bu için ile da de ne şifre şifremi şifrem hesap hesabım hesabımın merhaba teşekkürler " +
		"teşekkür ederim lütfen unuttum yardımcı olur musunuz misiniz sipariş kullanıcı adı adım saygılarımla " +
		"iyi günler değil var yok rica",
}

// ownLetters are letters that, among the languages above, only one uses.
var ownLetters = map[rune]string{
	'ß': "de",
	'ñ': "es",
	'ã': "pt", 'õ': "pt",
	'ą': "pl", 'ć': "pl", 'ę': "pl", 'ł': "pl", 'ń': "pl", 'ś': "pl", 'ź': "pl", 'ż': "pl",
	'ş': "tr", 'ğ': "tr", 'ı': "tr",
	'œ': "fr",
}

// maxLetterScore caps what letters alone add to a language: a name with
// an "ł" does not make a mail Polish.
const maxLetterScore = 2

// wordIndex maps a word to the languages that list it.
type wordIndex map[string][]string

func newWordIndex() wordIndex {
	idx := wordIndex{}
	for lang, words := range commonWords {
		for _, w := range strings.Fields(words) {
			idx[w] = append(idx[w], lang)
		}
	}
	return idx
}

// latinWords is the index of commonWords, built once at start and only
// read after.
var latinWords = newWordIndex()

// latinLanguage scores text against each language of commonWords (one
// point a common word, one a letter of ownLetters, at most
// maxLetterScore of them) and returns the best language and how far it
// is ahead of the second, from 0 to 1; "" when no language scores
// clearScore.
func latinLanguage(text string) (string, float64) {
	score := map[string]float64{}
	letterScore := map[string]float64{}
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && r != '\'' && r != '’' && r != '-'
	})
	for _, w := range words {
		w = strings.Trim(strings.ReplaceAll(w, "’", "'"), "'-")
		for _, lang := range latinWords[w] {
			score[lang]++
		}
		for _, r := range w {
			if lang, ok := ownLetters[r]; ok && letterScore[lang] < maxLetterScore {
				letterScore[lang]++
			}
		}
	}
	for _, r := range text { // not in any word: punctuation
		if r == '¿' || r == '¡' {
			if letterScore["es"] < maxLetterScore {
				letterScore["es"]++
			}
		}
	}
	for lang, s := range letterScore {
		score[lang] += s
	}
	best, first, second := "", 0.0, 0.0
	for _, lang := range sortedLanguages {
		switch s := score[lang]; {
		case s > first:
			best, first, second = lang, s, first
		case s > second:
			second = s
		}
	}
	if first < clearScore {
		return "", 0
	}
	return best, (first - second) / first
}

// sortedLanguages are the languages of commonWords in a fixed order, so
// that a tie is always decided the same way (the first listed wins).
var sortedLanguages = []string{"en", "de", "fr", "es", "it", "nl", "pt", "pl", "tr"}
