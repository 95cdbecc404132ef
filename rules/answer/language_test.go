package answer

import "testing"

// offered are the languages of the default policy's texts.
var offered = []string{"en", "de", "fr", "es", "it", "nl", "pt"}

// all13 are the languages of the policy's keyword lists.
var all13 = []string{"en", "de", "fr", "es", "it", "nl", "pt", "ja", "zh", "ko", "ru", "pl", "tr"}

func TestLanguage(t *testing.T) {
	tests := []struct {
		name, subject, text, contentLanguage string
		offered                              []string
		want                                 string
	}{
		{"english", "Password reset", "Hello, I forgot the password of my account. Could you help me please? Thanks", "", offered, "en"},
		{"german short", "", "Hallo, Passwort vergessen. Danke", "", offered, "de"},
		{"german", "Passwort vergessen", "Guten Tag,\nich habe mein Passwort vergessen und kann mich nicht mehr anmelden.\nMit freundlichen Grüßen\nHans", "", offered, "de"},
		{"french short", "", "Bonjour, mot de passe oublié. Merci", "", offered, "fr"},
		{"french", "Mot de passe", "Bonjour,\nje n'arrive plus à me connecter à mon compte, pouvez-vous réinitialiser mon mot de passe ?\nCordialement", "", offered, "fr"},
		{"spanish short", "", "Hola, olvidé mi contraseña. Gracias", "", offered, "es"},
		{"spanish", "Contraseña", "Buenos días,\nno puedo acceder a mi cuenta porque olvidé la contraseña. ¿Me pueden ayudar?\nSaludos", "", offered, "es"},
		{"italian short", "", "Ciao, password dimenticata. Grazie", "", offered, "it"},
		{"italian", "Password", "Buongiorno,\nnon riesco ad accedere al mio account, ho dimenticato la password. Potete aiutarmi?\nCordiali saluti", "", offered, "it"},
		{"dutch short", "", "Hoi, wachtwoord vergeten. Bedankt", "", offered, "nl"},
		{"dutch", "Wachtwoord", "Goedemiddag,\nik kan niet meer inloggen en ben mijn wachtwoord vergeten. Kunnen jullie mij helpen?\nMet vriendelijke groet", "", offered, "nl"},
		{"portuguese short", "", "Olá, esqueci a senha. Obrigado", "", offered, "pt"},
		{"portuguese", "Senha", "Bom dia,\nnão consigo acessar a minha conta, esqueci a minha senha. Podem me ajudar?\nObrigado", "", offered, "pt"},
		{"polish", "", "Dzień dobry, zapomniałem hasła do konta. Proszę o pomoc. Dziękuję", "", all13, "pl"},
		{"turkish", "", "Merhaba, hesabımın şifresini unuttum. Yardımcı olur musunuz? Teşekkürler", "", all13, "tr"},
		{"russian", "", "Здравствуйте, я забыл пароль от учётной записи. Спасибо", "", all13, "ru"},
		{"japanese kana", "", "パスワードを忘れました。よろしくお願いします。", "", all13, "ja"},
		{"japanese mostly kanji", "", "証明書の秘密鍵を紛失しました。", "", all13, "ja"},
		{"chinese", "", "您好，我忘记了账户的密码，请帮我重置。谢谢", "", all13, "zh"},
		{"traditional chinese", "", "您好，我忘記了帳戶的密碼。謝謝", "", all13, "zh"},
		{"korean", "", "안녕하세요, 비밀번호를 잊어버렸습니다. 감사합니다", "", all13, "ko"},
		{"japanese not offered", "", "パスワードを忘れました。", "", offered, "en"},
		{"polish not offered falls back to en", "", "Dzień dobry, zapomniałem hasła do konta. Proszę o pomoc. Dziękuję", "", offered, "en"},

		// Quoted text is not the customer's.
		{"german reply quoting english", "Re: Passwort [TR-104233]",
			"Hier ist sie, von der Admin-Adresse. Die Domain ist example.com.\n\n> We received your mail. Your reference is TR-104233.\n> We will answer as soon as we can. Please keep the reference in the subject.\n> Kind regards, the support team\n",
			"", offered, "de"},
		{"german reply after an On wrote line", "AW: Your reference TR-1",
			"Danke, hier ist die Bestellnummer 12345.\n\nOn Mon, 1 Dec 2026 at 10:00, Support <support@example-ca.test> wrote:\nWe received your mail. Your reference is TR-1. We will answer as soon as we can, within one working day.\nPlease keep the reference in the subject of your replies.\n",
			"", offered, "de"},
		{"german reply after a wrapped On wrote line", "AW: x",
			"Danke, hier ist die Bestellnummer 12345 von der Firma.\n\nOn Mon, 1 Dec 2026 at 10:00, Support Team of the CA\n<support@example-ca.test> wrote:\nWe received your mail. Your reference is TR-1. We will answer as soon as we can, within one working day.\nPlease keep the reference in the subject of your replies.\n",
			"", offered, "de"},
		{"english reply after an Am schrieb line", "",
			"Thank you, here is the order number you asked for.\n\nAm 01.12.2026 um 10:00 schrieb Support <support@example-ca.test>:\nWir haben Ihre Nachricht erhalten und antworten so bald wie möglich. Ihre Referenz ist TR-1.\n",
			"", offered, "en"},
		{"french reply above an original message", "",
			"Merci beaucoup, voici le numéro de commande demandé.\n\n-----Original Message-----\nFrom: Support\nWe received your mail and we will answer as soon as we can, within one working day.\n",
			"", offered, "fr"},
		{"only quoted text", "", "> Hallo, ich habe mein Passwort vergessen und kann mich nicht anmelden.\n", "", offered, "de"},

		// The Content-Language header.
		{"header decides an unclear text", "", "OK", "fr", offered, "fr"},
		{"header with a region", "", "12345", "de-CH", offered, "de"},
		{"header list", "", "", "xx, nl", offered, "nl"},
		{"header not offered", "", "12345", "ja", offered, "en"},
		{"clear text beats the header", "", "Guten Tag,\nich habe mein Passwort vergessen und kann mich nicht mehr anmelden.\nMit freundlichen Grüßen", "en", offered, "de"},
		{"short text beats the header", "", "Hallo, Passwort vergessen. Danke", "en", offered, "de"},

		// The subject when the body says little.
		{"subject when the body is empty", "Passwort vergessen, bitte zurücksetzen", "", "", offered, "de"},
		{"reply markers and tags left out", "AW: Re: [TR-104233] mot de passe oublié", "", "", offered, "fr"},
		{"links and addresses say nothing", "", "https://www.example.com/password/reset admin@example.com", "", offered, "en"},

		// Fallbacks.
		{"empty", "", "", "", offered, "en"},
		{"digits only", "", "12345 67890", "", offered, "en"},
		{"no en offered", "", "", "", []string{"de", "fr"}, "de"},
		{"nothing offered", "", "Hallo, Passwort vergessen. Danke", "", nil, "en"},
		{"offered with regions and case", "", "Hallo, Passwort vergessen. Danke", "", []string{"EN", "de-DE"}, "de"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Language(tt.subject, tt.text, tt.contentLanguage, tt.offered); got != tt.want {
				t.Errorf("Language() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOwnLines(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"plain", "a\nb", "a\nb\n"},
		{"quoted lines", "mine\n> theirs\n  > theirs too\nmine again", "mine\nmine again\n"},
		{"signature", "mine\n-- \nHans Muster\nACME", "mine\n"},
		{"attribution", "mine\nOn Tue, 2 Dec 2026, A <a@b> wrote:\ntheirs", "mine\n"},
		{"attribution in Dutch", "mine\nOp 2 dec. 2026 om 10:00 schreef A <a@b>:\ntheirs", "mine\n"},
		{"attribution in Portuguese", "mine\nEm 2 de dez. de 2026, A <a@b> escreveu:\ntheirs", "mine\n"},
		{"an On that is not one", "On Monday I could not log in.\nPlease help.", "On Monday I could not log in.\nPlease help.\n"},
		{"all quoted", "> x\n>> y", "x\ny\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OwnLines(tt.text); got != tt.want {
				t.Errorf("OwnLines() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOwnLinesBounded(t *testing.T) {
	long := ""
	for len(long) < 3*maxSampleBytes {
		long += "ä line of text\n"
	}
	if got := OwnLines(long); len(got) > maxSampleBytes {
		t.Errorf("OwnLines of %d bytes returned %d bytes, want at most %d", len(long), len(got), maxSampleBytes)
	}
}
