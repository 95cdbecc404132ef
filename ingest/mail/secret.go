package mail

import (
	"bytes"
	"cmp"
	"path"
	"slices"
	"strings"
)

// Kinds of key material an attachment can carry.
const (
	SecretPKCS12     = "pkcs12"
	SecretPrivateKey = "private-key"
)

// pkcs12Types and keyExtensions name attachments that are key material by
// their label alone.
var (
	pkcs12Types   = []string{"application/x-pkcs12", "application/pkcs12"}
	pkcs12Ext     = []string{".pfx", ".p12"}
	privateKeyExt = []string{".key", ".pvk", ".p8", ".jks", ".keystore", ".ppk"}
)

// pfxOID is the DER encoding of the id-data content type
// (1.2.840.113549.1.7.1) that opens every PKCS#12 PFX's authSafe.
var pfxOID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}

// The OIDs (with their tag and length) of the schemes that encrypt a
// PKCS#8 private key: PKCS#5 (1.2.840.113549.1.5.*, PBES1 and PBES2) and
// PKCS#12 (1.2.840.113549.1.12.1.*).
var (
	pkcs5OID     = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05}
	pkcs12PBEOID = []byte{0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01}
)

// puttyKeyFile opens every PuTTY private key file (.ppk).
var puttyKeyFile = []byte("PuTTY-User-Key-File-")

// keyRemoved replaces key material in the text kept for the ticket.
const keyRemoved = "[private key removed]"

// secretDetector watches a part's decoded bytes for key material: a
// PKCS#12 structure, a DER private key or a PuTTY key file at the start, a
// PEM private key or base64 key anywhere (see keyScanner), or a label
// (type, file extension) that says so. HTML is looked at as a browser
// shows it too, and text in a charset that is not ASCII-compatible
// (UTF-16, EBCDIC) converted to UTF-8.
type secretDetector struct {
	label string // secret kind known from type or name
	head  [32]byte
	headN int // bytes of head filled: the first bytes, for the sniffs
	text  keyScanner
	html  htmlView
	// htmlOn is set for HTML.
	htmlOn bool
	conv   *charsetView // nil unless the charset needs converting
}

func newSecretDetector(mediaType, name string) *secretDetector {
	d := &secretDetector{}
	d.reset(mediaType, name, "", true)
	return d
}

// reset readies d for a new part; labels says whether the type and name
// may mark it as key material (they do for attachments, not for text).
func (d *secretDetector) reset(mediaType, name, charset string, labels bool) {
	d.label, d.headN = "", 0
	d.text.reset()
	d.htmlOn = strings.Contains(mediaType, "html") // text/html, text/watch-html, application/xhtml+xml
	if d.htmlOn {
		d.html.reset()
	}
	d.conv = newCharsetView(charset, d.htmlOn)
	if !labels {
		return
	}
	ext := strings.ToLower(path.Ext(name))
	switch {
	case slices.Contains(pkcs12Types, mediaType), slices.Contains(pkcs12Ext, ext):
		d.label = SecretPKCS12
	case mediaType == "application/pkcs8", slices.Contains(privateKeyExt, ext):
		d.label = SecretPrivateKey
	}
}

func (d *secretDetector) Write(b []byte) (int, error) {
	if d.headN < len(d.head) {
		d.headN += copy(d.head[d.headN:], b)
	}
	d.text.Write(b)
	if d.htmlOn {
		d.html.Write(b)
	}
	if d.conv != nil {
		d.conv.Write(b)
	}
	return len(b), nil
}

// secret returns the kind of key material seen, or "". It ends the part:
// what is held back for a marker that might continue is looked at.
func (d *secretDetector) secret() string {
	d.text.close()
	kind := d.text.kind
	if d.htmlOn {
		d.html.close()
		kind = cmp.Or(kind, d.html.scan.kind)
	}
	if d.conv != nil {
		kind = cmp.Or(kind, d.conv.close())
	}
	head := d.head[:d.headN]
	switch {
	case d.label != "":
		return d.label
	case kind != "":
		return kind
	case isPKCS12(head):
		return SecretPKCS12
	case isKeyDER(head), bytes.HasPrefix(head, puttyKeyFile):
		return SecretPrivateKey
	}
	return ""
}

// isPKCS12 recognises the DER start of a PFX: SEQUENCE { INTEGER 3,
// SEQUENCE { OID id-data ... } }.
func isPKCS12(head []byte) bool {
	if len(head) < 2 || head[0] != 0x30 {
		return false
	}
	i := 2
	if head[1]&0x80 != 0 { // long-form length
		i += int(head[1] & 0x7f)
	}
	if i+3 > len(head) || !bytes.Equal(head[i:i+3], []byte{0x02, 0x01, 0x03}) {
		return false
	}
	return bytes.Contains(head[i+3:], pfxOID)
}

// isKeyDER recognises the DER start of a private key: PKCS#1 RSA or DSA
// (SEQUENCE { INTEGER 0, INTEGER n ... }), PKCS#8 (SEQUENCE { INTEGER 0
// or 1, SEQUENCE { OID ... } ... }), SEC 1 EC (SEQUENCE { INTEGER 1,
// OCTET STRING d ... }) and encrypted PKCS#8 (SEQUENCE { SEQUENCE { OID of
// a PKCS#5 or PKCS#12 scheme ... } ... }). Certificates, requests and
// public keys start otherwise: a SEQUENCE in a SEQUENCE, or an algorithm
// that encrypts nothing.
func isKeyDER(head []byte) bool {
	body, n, ok := derSequence(head)
	if !ok || n < 32 || len(body) < 5 {
		return false
	}
	if body[0] == 0x02 && body[1] == 0x01 { // INTEGER version
		switch v, next := body[2], body[3]; {
		case v == 0 && next == 0x02: // a big INTEGER follows: modulus or prime
			return body[4] >= 0x40 && body[4] != 0x80
		case (v == 0 || v == 1) && next == 0x30:
			alg, _, ok := derSequence(body[3:])
			return ok && len(alg) > 0 && alg[0] == 0x06
		case v == 1 && next == 0x04: // the private scalar, 24 to 127 bytes
			return body[4] >= 0x18 && body[4] < 0x80
		}
		return false
	}
	alg, _, ok := derSequence(body)
	return ok && (bytes.HasPrefix(alg, pkcs5OID) || bytes.HasPrefix(alg, pkcs12PBEOID))
}

// derSequence returns what follows the tag and length of a DER SEQUENCE at
// the start of b, and the length it gives (-1 when indefinite).
func derSequence(b []byte) ([]byte, int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return nil, 0, false
	}
	switch l := b[1]; {
	case l < 0x80:
		return b[2:], int(l), true
	case l == 0x80:
		return b[2:], -1, true
	case l <= 0x83 && len(b) >= 2+int(l&0x7f):
		n := 0
		for _, c := range b[2 : 2+int(l&0x7f)] {
			n = n<<8 | int(c)
		}
		return b[2+int(l&0x7f):], n, true
	}
	return nil, 0, false
}
