package main

// The words of the generated mailbox: what customers write to a
// certificate authority's support, in eight languages, with the phrases
// the default policy's keywords look for, so that tickets spread over the
// intents, colours and dispositions as real mail would.

// language is everything the generator writes in one language.
type language struct {
	code     string // Content-Language
	weight   int    // share of the mails, out of the sum of weights
	japanese bool   // written in ISO-2022-JP, Shift_JIS or UTF-8, never wrapped
	// intents: the request itself, by intent; {name} is the writer's name.
	intents map[string][]string
	// subjects by intent.
	subjects map[string][]string
	// refOrder, refDomain, refUsername name the account: {order},
	// {domain}, {username}.
	refOrder, refDomain, refUsername []string
	// onBehalf: a partner writing for its customer {cname} ({domain}).
	onBehalf []string
	// secret: a customer pasting a password, {secret}.
	secret  []string
	closing []string
	// quoteHead introduces a quoted earlier message: {date}.
	quoteHead string
	// supportReply is what support answered earlier (quoted back).
	supportReply []string
	disclaimer   string
	autoSubject  string // auto-reply subject prefix
	autoBody     []string
	people       []person
	freemail     []string // domains of unknown senders
}

// person is a writer: display name and the local part of the address.
type person struct{ name, local string }

// weighted is a choice and its share.
type weighted struct {
	name   string
	weight int
}

// intentWeights spreads mails over the intents (out of 100).
func intentWeights() []weighted {
	return []weighted{
		{"password-reset", 50}, {"username-reminder", 15}, {"code-signing", 10},
		{"password-disclosure", 7}, {"other", 18},
	}
}

const enDisclaimer = "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use " +
	"of the intended recipient(s) and may contain confidential and privileged information. Any unauthorized review, " +
	"use, disclosure or distribution is prohibited. If you are not the intended recipient, please contact the sender " +
	"by reply e-mail and destroy all copies of the original message. Please consider the environment before printing " +
	"this e-mail. Registered office as above; registered in England and Wales under company number 01234567."

// supportRepliesEN is what support answered earlier: quoted back in replies.
func supportRepliesEN() []string {
	return []string{
		"Thank you for contacting Certificate Support. We have received your request and a member of our team will get back to you shortly. Our support hours are Monday to Friday, 08:00 to 20:00 CET.",
		"For security reasons we can only reset the password of an account when the request comes from the administrator address registered on the account. Please reply from that address, or use the self-service page at https://portal.ca.example/reset.",
		"Your request has been logged with ticket number #{ticket}. Please keep this number in the subject line of any reply so that we can find your request quickly.",
		"We never send passwords by e-mail. If a PFX file cannot be opened any more, the certificate has to be reissued: the private key cannot be recovered by us, as we never had it.",
		"Please note that the username is shown in the welcome e-mail we sent when the account was created. If you cannot find it, the administrator of the account can look it up under Settings, Users.",
		"We have checked the order and the domain validation is still pending. Please make sure the DNS record or the file we asked for is in place, then let us know and we will check again.",
	}
}

// languages returns the corpus, a fresh copy each call.
func languages() []*language {
	support := supportRepliesEN()
	return []*language{
		{
			code: "en-GB", weight: 45,
			intents: map[string][]string{
				"password-reset": {
					"Hello,\n\nI forgot my password and cannot log in to the customer portal any more. Could you please reset my password? I tried the self-service page twice but the mail never arrived.",
					"Hi team,\n\nwe are locked out of our account since this morning after three wrong attempts. Please send a password reset link to the account administrator so we can renew our certificates before they expire.",
					"Good morning,\n\nI need a new password for our account: the old one stopped working after your portal update last week. Thanks in advance for your help.",
					"Dear Support,\n\nour former IT manager has left the company and nobody knows the password. Can you reset the password of our account? We have certificates expiring at the end of the month.",
				},
				"username-reminder": {
					"Hello,\n\nI forgot my username for the certificate portal. Can you tell me which login we use? I only have the order confirmation.",
					"Hi,\n\nI don't remember my username and the password reset form asks for it. Could you send me a username reminder?",
				},
				"code-signing": {
					"Hello,\n\nwe bought a code signing certificate last month and I lost the certificate password of the PFX file. How can we export the certificate again? Our build server needs it today.",
					"Hi,\n\nthe pfx password for our code-signing certificate does not work. The private key password we set when we exported the certificate was stored in a password manager that we lost.",
				},
				"password-disclosure": {
					"Hi,\n\ncould you just email me my password? I have to log in today to download the certificate and I do not have access to the admin mailbox.",
					"Hello,\n\nwhat is my password for the portal? I need it urgently, my colleague is on holiday.",
				},
				"other": {
					"Hello,\n\nplease send us the invoice for the renewal of our certificate, our accounting department needs it with our VAT number.",
					"Hi,\n\nthe domain validation for our order is still pending although the DNS record is in place. Can you check and reissue the certificate?",
					"Dear team,\n\nwe need help with the installation of the new certificate on our load balancer; the chain seems to be incomplete.",
				},
			},
			subjects: map[string][]string{
				"password-reset":      {"Password reset", "Cannot log in to the portal", "Locked out of our account", "Please reset my password", "URGENT: new password needed"},
				"username-reminder":   {"Forgot my username", "Username reminder", "Which login do we use?"},
				"code-signing":        {"Code signing certificate password", "PFX password lost", "Cannot export the certificate"},
				"password-disclosure": {"My password", "Password for the portal", "Need my password today"},
				"other":               {"Invoice for the renewal", "Domain validation pending", "Certificate installation", "Question about our order"},
			},
			refOrder:    []string{"Our order number is {order}.", "This is about order {order}.", "Order: {order}"},
			refDomain:   []string{"The account is for {domain}.", "Our domain is {domain}.", "It concerns the certificate for {domain}."},
			refUsername: []string{"My username is {username}.", "The login name should be {username}."},
			onBehalf:    []string{"We are writing on behalf of our customer {cname} ({domain}).", "This request is for our customer {cname}, domain {domain}."},
			secret:      []string{"The password I tried was: {secret}", "My old password is {secret} if that helps."},
			closing:     []string{"Kind regards,", "Best regards,", "Thanks,", "Many thanks,", "Cheers,"},
			quoteHead:   "On {date}, Certificate Support <support@ca.example> wrote:",
			disclaimer:  enDisclaimer, supportReply: support,
			autoSubject: "Automatic reply: ",
			autoBody:    []string{"Thank you for your message. I am out of the office until Monday with limited access to e-mail. For urgent matters please contact our service desk.", "I am currently on annual leave and will respond to your e-mail when I return."},
			people: []person{{"James Carter", "james.carter"}, {"Emma Thompson", "emma.thompson"}, {"Oliver Bennett", "o.bennett"},
				{"Sophia Patel", "sophia.patel"}, {"Liam O'Connor", "liam.oconnor"}, {"Ava Robinson", "ava"}, {"Noah Walker", "nwalker"},
				{"Grace Hughes", "grace.hughes"}},
			freemail: []string{"gmail.example", "outlook.example", "yahoo.example", "icloud.example", "proton.example"},
		},
		{
			code: "de-DE", weight: 15,
			intents: map[string][]string{
				"password-reset": {
					"Guten Tag,\n\nich habe mein Passwort vergessen und kann mich nicht anmelden. Bitte setzen Sie das Passwort für unser Konto zurück. Die Zurücksetzung über das Portal funktioniert leider nicht.",
					"Hallo,\n\nseit heute Morgen ist unser Konto gesperrt, wir brauchen dringend ein neues Passwort. Unsere Zertifikate laufen Ende des Monats ab.",
					"Sehr geehrte Damen und Herren,\n\nunser Administrator hat das Unternehmen verlassen. Wir bitten um Rücksetzung des Passworts, damit wir wieder Zugriff bekommen.",
				},
				"username-reminder": {
					"Hallo,\n\nich habe meinen Benutzernamen vergessen. Wie lautet mein Benutzername für das Kundenportal?",
					"Guten Tag,\n\nleider habe ich den Anmeldename vergessen und finde die Willkommensmail nicht mehr.",
				},
				"code-signing": {
					"Guten Tag,\n\nwir haben das Zertifikatspasswort für unser Codesignatur-Zertifikat verloren. Wie können wir das Zertifikat exportieren, wenn das PFX-Passwort nicht mehr bekannt ist?",
				},
				"password-disclosure": {
					"Hallo,\n\nbitte teilen Sie mir mein Passwort mit, ich brauche es heute noch für die Verlängerung.",
					"Guten Tag,\n\nwas ist mein Passwort für das Portal? Mein Kollege ist im Urlaub.",
				},
				"other": {
					"Sehr geehrte Damen und Herren,\n\nbitte senden Sie uns die Rechnung zur Verlängerung unseres Zertifikats mit unserer USt-IdNr.",
					"Hallo,\n\ndie Validierung unserer Domain hängt seit drei Tagen. Können Sie das bitte prüfen?",
				},
			},
			subjects: map[string][]string{
				"password-reset":      {"Passwort vergessen", "Passwort zurücksetzen", "Konto gesperrt", "Dringend: neues Passwort"},
				"username-reminder":   {"Benutzername vergessen", "Anmeldename"},
				"code-signing":        {"Zertifikatspasswort verloren", "PFX-Passwort"},
				"password-disclosure": {"Mein Passwort", "Passwort für das Portal"},
				"other":               {"Rechnung Verlängerung", "Validierung hängt", "Frage zur Bestellung"},
			},
			refOrder:    []string{"Unsere Bestellnummer lautet {order}.", "Es geht um den Auftrag {order}."},
			refDomain:   []string{"Es geht um die Domain {domain}.", "Betroffen ist {domain}."},
			refUsername: []string{"Mein Benutzername ist {username}.", "Benutzername: {username}"},
			onBehalf:    []string{"Wir schreiben im Auftrag unseres Kunden {cname} ({domain}).", "Die Anfrage betrifft unseren Kunden {cname}, Domain {domain}."},
			secret:      []string{"Das alte Passwort: {secret}", "Ich habe es mit dem Kennwort {secret} versucht."},
			closing:     []string{"Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße", "Danke und Gruß"},
			quoteHead:   "Am {date} schrieb Certificate Support <support@ca.example>:",
			disclaimer: "Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen. Wenn Sie nicht der richtige " +
				"Adressat sind oder diese E-Mail irrtümlich erhalten haben, informieren Sie bitte sofort den Absender und vernichten " +
				"Sie diese Mail. Das unerlaubte Kopieren sowie die unbefugte Weitergabe dieser Mail sind nicht gestattet. " +
				"Geschäftsführer: Dr. Jürgen Weiß, Sitz der Gesellschaft: München, Registergericht: Amtsgericht München HRB 123456.",
			supportReply: support,
			autoSubject:  "Abwesenheitsnotiz: ",
			autoBody:     []string{"Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich Freitag nicht im Büro und habe keinen Zugriff auf meine E-Mails. In dringenden Fällen wenden Sie sich bitte an unseren Service-Desk."},
			people: []person{{"Jürgen Müller", "j.mueller"}, {"Anna Schäfer", "anna.schaefer"}, {"Lukas Weiß", "lukas.weiss"},
				{"Sabine Groß", "s.gross"}, {"Tobias Köhler", "tkoehler"}, {"Katrin Bäcker", "k.baecker"}},
			freemail: []string{"gmx.example", "web.example", "t-online.example", "posteo.example"},
		},
		{
			code: "fr-FR", weight: 10,
			intents: map[string][]string{
				"password-reset": {
					"Bonjour,\n\nj'ai oublié mon mot de passe et je ne peux pas me connecter à mon compte. Pouvez-vous réinitialiser le mot de passe s'il vous plaît ?",
					"Bonjour,\n\nnotre compte est bloqué depuis ce matin. Nous avons besoin d'un nouveau mot de passe rapidement, merci d'avance.",
				},
				"username-reminder": {"Bonjour,\n\nj'ai oublié mon identifiant. Quel est mon nom d'utilisateur pour le portail client ?"},
				"code-signing":      {"Bonjour,\n\nnous avons perdu le mot de passe du certificat de signature de code. Comment exporter le certificat à nouveau ?"},
				"password-disclosure": {
					"Bonjour,\n\npourriez-vous m'envoyer mon mot de passe par retour de mail ? J'en ai besoin aujourd'hui.",
				},
				"other": {"Bonjour,\n\nmerci de nous envoyer la facture pour le renouvellement de notre certificat.", "Bonjour,\n\nla validation de notre domaine est toujours en attente. Pouvez-vous vérifier ?"},
			},
			subjects: map[string][]string{
				"password-reset":      {"Mot de passe oublié", "Compte bloqué", "Réinitialisation du mot de passe"},
				"username-reminder":   {"Identifiant oublié"},
				"code-signing":        {"Mot de passe du certificat"},
				"password-disclosure": {"Mon mot de passe"},
				"other":               {"Facture renouvellement", "Validation en attente"},
			},
			refOrder:    []string{"Notre numéro de commande est {order}.", "Commande n° {order}."},
			refDomain:   []string{"Il s'agit du domaine {domain}.", "Le domaine concerné est {domain}."},
			refUsername: []string{"Mon identifiant est {username}."},
			onBehalf:    []string{"Nous écrivons pour le compte de notre client {cname} ({domain})."},
			secret:      []string{"L'ancien mot de passe : {secret}"},
			closing:     []string{"Cordialement,", "Bien à vous,", "Merci d'avance,"},
			quoteHead:   "Le {date}, Certificate Support <support@ca.example> a écrit :",
			disclaimer: "Ce message et toutes les pièces jointes sont confidentiels et établis à l'intention exclusive de ses " +
				"destinataires. Toute utilisation ou diffusion non autorisée est interdite. Si vous avez reçu ce message par erreur, " +
				"merci d'en avertir immédiatement l'expéditeur et de le détruire. L'intégrité de ce message n'étant pas assurée sur " +
				"Internet, la société ne peut être tenue responsable de son contenu.",
			supportReply: support,
			autoSubject:  "Réponse automatique : ",
			autoBody:     []string{"Je suis absent du bureau jusqu'au lundi inclus. Pour toute urgence, merci de contacter le service informatique."},
			people: []person{{"François Lefèvre", "francois.lefevre"}, {"Hélène Dubois", "h.dubois"}, {"Amélie Girard", "amelie.girard"},
				{"Sébastien Moreau", "smoreau"}},
			freemail: []string{"orange.example", "free.example", "laposte.example"},
		},
		{
			code: "es-ES", weight: 8,
			intents: map[string][]string{
				"password-reset": {
					"Hola,\n\nolvidé mi contraseña y no puedo iniciar sesión. ¿Pueden restablecer la contraseña, por favor?",
					"Buenos días,\n\nnuestra cuenta bloqueada desde ayer, necesitamos una nueva contraseña para renovar los certificados.",
				},
				"username-reminder":   {"Hola,\n\nolvidé mi nombre de usuario. ¿Cuál es mi usuario para el portal?"},
				"code-signing":        {"Buenos días,\n\nhemos perdido la contraseña del certificado de firma de código. ¿Cómo podemos exportar el certificado?"},
				"password-disclosure": {"Hola,\n\n¿pueden enviarme mi contraseña? La necesito hoy mismo."},
				"other":               {"Hola,\n\nnecesitamos la factura de la renovación del certificado, por favor."},
			},
			subjects: map[string][]string{
				"password-reset":      {"Olvidé mi contraseña", "Cuenta bloqueada"},
				"username-reminder":   {"Nombre de usuario olvidado"},
				"code-signing":        {"Contraseña del certificado"},
				"password-disclosure": {"Mi contraseña"},
				"other":               {"Factura de renovación"},
			},
			refOrder:    []string{"Nuestro número de pedido es {order}.", "Pedido {order}."},
			refDomain:   []string{"Se trata del dominio {domain}."},
			refUsername: []string{"Mi usuario es {username}."},
			onBehalf:    []string{"Escribimos en nombre de nuestro cliente {cname} ({domain})."},
			secret:      []string{"La contraseña antigua: {secret}"},
			closing:     []string{"Saludos cordiales,", "Un saludo,", "Gracias,"},
			quoteHead:   "El {date}, Certificate Support <support@ca.example> escribió:",
			disclaimer: "Este mensaje y sus archivos adjuntos van dirigidos exclusivamente a su destinatario, pudiendo contener " +
				"información confidencial sometida a secreto profesional. No está permitida su reproducción o distribución sin la " +
				"autorización expresa del remitente. Si usted no es el destinatario final, por favor elimínelo e infórmenos por esta vía.",
			supportReply: support,
			autoSubject:  "Respuesta automática: ",
			autoBody:     []string{"Estoy fuera de la oficina hasta el lunes. Para asuntos urgentes, contacte con el departamento de sistemas."},
			people:       []person{{"José Muñoz", "jose.munoz"}, {"María Fernández", "mfernandez"}, {"Lucía Martín", "lucia.martin"}},
			freemail:     []string{"hotmail.example", "telefonica.example"},
		},
		{
			code: "it-IT", weight: 6,
			intents: map[string][]string{
				"password-reset":      {"Buongiorno,\n\nho dimenticato la password e non riesco ad accedere al portale. Potete reimpostare la password?"},
				"username-reminder":   {"Salve,\n\nho dimenticato il nome utente. Qual è il mio nome utente per il portale?"},
				"code-signing":        {"Buongiorno,\n\nabbiamo perso la password del certificato di firma del codice. Come possiamo esportare il certificato?"},
				"password-disclosure": {"Buongiorno,\n\npotreste inviarmi la password via email? Mi serve oggi."},
				"other":               {"Buongiorno,\n\nvi chiediamo la fattura per il rinnovo del certificato."},
			},
			subjects: map[string][]string{
				"password-reset": {"Password dimenticata", "Account bloccato"}, "username-reminder": {"Nome utente dimenticato"},
				"code-signing": {"Password del certificato"}, "password-disclosure": {"La mia password"}, "other": {"Fattura rinnovo"},
			},
			refOrder:    []string{"Il nostro numero d'ordine è {order}."},
			refDomain:   []string{"Si tratta del dominio {domain}."},
			refUsername: []string{"Il mio nome utente è {username}."},
			onBehalf:    []string{"Scriviamo per conto del nostro cliente {cname} ({domain})."},
			secret:      []string{"La vecchia password: {secret}"},
			closing:     []string{"Cordiali saluti,", "Distinti saluti,", "Grazie,"},
			quoteHead:   "Il {date} Certificate Support <support@ca.example> ha scritto:",
			disclaimer: "Le informazioni contenute in questo messaggio sono riservate e ad uso esclusivo del destinatario. " +
				"Qualora il messaggio vi fosse pervenuto per errore, vi invitiamo ad eliminarlo senza copiarlo e a non inoltrarlo a terzi, " +
				"dandocene gentilmente comunicazione.",
			supportReply: support,
			autoSubject:  "Risposta automatica: ",
			autoBody:     []string{"Sono fuori ufficio fino a lunedì. Per urgenze contattare l'ufficio IT."},
			people:       []person{{"Giuseppe Ricci", "g.ricci"}, {"Chiara Conti", "chiara.conti"}, {"Niccolò Esposito", "nesposito"}},
			freemail:     []string{"libero.example", "tiscali.example"},
		},
		{
			code: "nl-NL", weight: 6,
			intents: map[string][]string{
				"password-reset":      {"Hallo,\n\nik ben mijn wachtwoord vergeten en kan niet inloggen. Kunt u het wachtwoord resetten?"},
				"username-reminder":   {"Goedemiddag,\n\nik ben mijn gebruikersnaam vergeten. Wat is mijn gebruikersnaam voor het portaal?"},
				"code-signing":        {"Hallo,\n\nwij zijn het wachtwoord van het certificaat kwijt (codesigning-certificaat). Hoe kunnen we het certificaat exporteren?"},
				"password-disclosure": {"Hallo,\n\nkunt u mijn wachtwoord sturen naar dit adres? Ik heb het vandaag nodig."},
				"other":               {"Hallo,\n\ngraag ontvangen wij de factuur voor de verlenging van ons certificaat."},
			},
			subjects: map[string][]string{
				"password-reset": {"Wachtwoord vergeten", "Kan niet inloggen"}, "username-reminder": {"Gebruikersnaam vergeten"},
				"code-signing": {"Certificaatwachtwoord"}, "password-disclosure": {"Mijn wachtwoord"}, "other": {"Factuur verlenging"},
			},
			refOrder:    []string{"Ons ordernummer is {order}."},
			refDomain:   []string{"Het gaat om het domein {domain}."},
			refUsername: []string{"Mijn gebruikersnaam is {username}."},
			onBehalf:    []string{"Wij schrijven namens onze klant {cname} ({domain})."},
			secret:      []string{"Het oude wachtwoord: {secret}"},
			closing:     []string{"Met vriendelijke groet,", "Groeten,"},
			quoteHead:   "Op {date} schreef Certificate Support <support@ca.example>:",
			disclaimer: "De informatie in dit e-mailbericht is vertrouwelijk en uitsluitend bestemd voor de geadresseerde. " +
				"Indien u dit bericht onterecht heeft ontvangen, wordt u verzocht de afzender te informeren en het bericht te verwijderen.",
			supportReply: support,
			autoSubject:  "Automatisch antwoord: ",
			autoBody:     []string{"Ik ben afwezig tot en met vrijdag. Voor dringende zaken kunt u contact opnemen met de servicedesk."},
			people:       []person{{"Pieter de Vries", "p.devries"}, {"Sanne Jansen", "sanne.jansen"}, {"Daan Bakker", "daan"}},
			freemail:     []string{"ziggo.example", "kpnmail.example"},
		},
		{
			code: "pt-BR", weight: 5,
			intents: map[string][]string{
				"password-reset":      {"Olá,\n\nesqueci minha senha e não consigo acessar a conta. Podem redefinir a senha, por favor?"},
				"username-reminder":   {"Olá,\n\nesqueci meu nome de usuário. Qual é o meu nome de usuário no portal?"},
				"code-signing":        {"Bom dia,\n\nperdemos a senha do certificado de assinatura de código. Como exportar o certificado novamente?"},
				"password-disclosure": {"Olá,\n\npodem me enviar minha senha por e-mail? Preciso dela hoje."},
				"other":               {"Bom dia,\n\nprecisamos da fatura da renovação do certificado."},
			},
			subjects: map[string][]string{
				"password-reset": {"Esqueci minha senha", "Conta bloqueada"}, "username-reminder": {"Nome de usuário esquecido"},
				"code-signing": {"Senha do certificado"}, "password-disclosure": {"Minha senha"}, "other": {"Fatura da renovação"},
			},
			refOrder:    []string{"O nosso número de pedido é {order}."},
			refDomain:   []string{"Trata-se do domínio {domain}."},
			refUsername: []string{"Meu usuário é {username}."},
			onBehalf:    []string{"Escrevemos em nome do nosso cliente {cname} ({domain})."},
			secret:      []string{"A senha antiga: {secret}"},
			closing:     []string{"Atenciosamente,", "Obrigado,", "Abraços,"},
			quoteHead:   "Em {date}, Certificate Support <support@ca.example> escreveu:",
			disclaimer: "Esta mensagem pode conter informação confidencial e/ou privilegiada. Se você não for o destinatário ou a " +
				"pessoa autorizada a receber esta mensagem, não pode usar, copiar ou divulgar as informações nela contidas.",
			supportReply: support,
			autoSubject:  "Resposta automática: ",
			autoBody:     []string{"Estou fora do escritório até segunda-feira. Em caso de urgência, contate o suporte interno."},
			people:       []person{{"João Gonçalves", "joao.goncalves"}, {"Ana Simões", "ana.simoes"}, {"Luís Araújo", "laraujo"}},
			freemail:     []string{"uol.example", "sapo.example"},
		},
		{
			code: "ja-JP", weight: 5, japanese: true,
			intents: map[string][]string{
				"password-reset": {
					"お世話になっております。\n\nパスワードを忘れてしまい、ログインできません。\nパスワードのリセットをお願いできますでしょうか。",
					"いつもお世話になっております。\n\n管理者が退職したため、アカウントのパスワードが分からなくなりました。\n再設定の手続きを教えてください。",
				},
				"username-reminder":   {"いつもお世話になっております。\n\nユーザー名を忘れてしまいました。\n確認方法を教えてください。"},
				"code-signing":        {"お世話になっております。\n\nコードサイニング証明書のパスワードが分からなくなりました。\n証明書を再度エクスポートする方法を教えてください。"},
				"password-disclosure": {"お世話になっております。\n\n現在のパスワードをメールで教えていただけますか。\n本日中に必要です。"},
				"other":               {"お世話になっております。\n\n証明書更新の請求書を送付してください。"},
			},
			subjects: map[string][]string{
				"password-reset": {"パスワードを忘れました", "ログインできません"}, "username-reminder": {"ユーザー名の確認"},
				"code-signing": {"証明書のパスワードについて"}, "password-disclosure": {"パスワードの確認"}, "other": {"請求書の送付依頼"},
			},
			refOrder:    []string{"注文番号は {order} です。"},
			refDomain:   []string{"ドメインは {domain} です。"},
			refUsername: []string{"ユーザー名は {username} です。"},
			onBehalf:    []string{"弊社のお客様 {cname}（{domain}）の件でご連絡いたします。"},
			closing:     []string{"よろしくお願いいたします。", "以上、よろしくお願い申し上げます。"},
			quoteHead:   "{date} Certificate Support <support@ca.example>:",
			disclaimer: "このメールには機密情報が含まれている場合があります。誤って受信された場合は、" +
				"送信者にご連絡のうえ、本メールを削除してください。",
			supportReply: support,
			autoSubject:  "自動応答: ",
			autoBody:     []string{"ただいま不在にしております。月曜日以降に返信いたします。"},
			people:       []person{{"山田 太郎", "yamada.taro"}, {"佐藤 花子", "sato.hanako"}, {"鈴木 一郎", "i.suzuki"}, {"高橋 美咲", "misaki.t"}},
			freemail:     []string{"docomo.example", "nifty.example", "biglobe.example"},
		},
	}
}

// Outlook's HTML prelude: most of the weight of a real HTML support mail.
const outlookStyle = `<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="Generator" content="Microsoft Word 15 (filtered medium)">
<style><!--
/* Font Definitions */
@font-face
	{font-family:"Cambria Math";
	panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face
	{font-family:Calibri;
	panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face
	{font-family:Aptos;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal
	{margin:0cm;
	font-size:11.0pt;
	font-family:"Calibri",sans-serif;
	mso-ligatures:standardcontextual;
	mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink
	{mso-style-priority:99;
	color:#0563C1;
	text-decoration:underline;}
span.EmailStyle17
	{mso-style-type:personal-compose;
	font-family:"Calibri",sans-serif;
	color:windowtext;}
.MsoChpDefault
	{mso-style-type:export-only;
	font-size:10.0pt;
	mso-fareast-language:EN-US;}
@page WordSection1
	{size:612.0pt 792.0pt;
	margin:70.85pt 70.85pt 2.0cm 70.85pt;}
div.WordSection1
	{page:WordSection1;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit">
<o:idmap v:ext="edit" data="1" />
</o:shapelayout></xml><![endif]-->
</head>
<body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">
<div class="WordSection1">
`
