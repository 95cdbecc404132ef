package ingest

import (
	"bytes"
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
	privateKeyExt = []string{".key", ".pvk", ".p8", ".jks", ".keystore"}
)

// pfxOID is the DER encoding of the id-data content type
// (1.2.840.113549.1.7.1) that opens every PKCS#12 PFX's authSafe.
var pfxOID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}

// pemKeyMarker ends the BEGIN line of every PEM private key block
// ("-----BEGIN RSA PRIVATE KEY-----", "... ENCRYPTED PRIVATE KEY-----").
var pemKeyMarker = []byte("PRIVATE KEY-----")

// secretDetector watches an attachment's decoded bytes for key material: a
// PKCS#12 structure at the start, a PEM private key anywhere, or a label
// (type, file extension) that says so.
type secretDetector struct {
	label string // secret kind known from type or name
	head  []byte // first bytes, for the PKCS#12 sniff
	tail  []byte // last bytes of earlier writes, for markers split across writes
	pem   bool
}

func newSecretDetector(mediaType, name string) *secretDetector {
	d := &secretDetector{}
	ext := strings.ToLower(path.Ext(name))
	switch {
	case slices.Contains(pkcs12Types, mediaType), slices.Contains(pkcs12Ext, ext):
		d.label = SecretPKCS12
	case mediaType == "application/pkcs8", slices.Contains(privateKeyExt, ext):
		d.label = SecretPrivateKey
	}
	return d
}

func (d *secretDetector) Write(b []byte) (int, error) {
	const headLen = 32
	if len(d.head) < headLen {
		d.head = append(d.head, b[:min(len(b), headLen-len(d.head))]...)
	}
	if !d.pem {
		// tail holds the last len(marker)-1 bytes seen, over any number of
		// earlier writes, so a marker split across writes of any size is
		// found.
		n := len(pemKeyMarker) - 1
		d.tail = append(d.tail, b[:min(len(b), n)]...)
		d.pem = bytes.Contains(d.tail, pemKeyMarker) || bytes.Contains(b, pemKeyMarker)
		if len(b) >= n {
			d.tail = append(d.tail[:0], b[len(b)-n:]...)
		} else if len(d.tail) > n {
			d.tail = append(d.tail[:0], d.tail[len(d.tail)-n:]...)
		}
	}
	return len(b), nil
}

// secret returns the kind of key material seen, or "".
func (d *secretDetector) secret() string {
	switch {
	case d.label != "":
		return d.label
	case d.pem:
		return SecretPrivateKey
	case isPKCS12(d.head):
		return SecretPKCS12
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
