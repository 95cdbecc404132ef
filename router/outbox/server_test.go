package outbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/internal/natstest"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// The test submission server's account.
const (
	testUser     = "support@ca.test"
	testPassword = "correct horse battery staple"
	testToken    = "ya29.test-access-token"
)

// received is one mail the test server accepted.
type received struct {
	From, To string
	Data     []byte
}

// mailServer is a submission server (go-smtp's) on 127.0.0.1 with TLS from
// a throw-away CA and AUTH PLAIN, LOGIN and XOAUTH2, which can be stopped
// and started again on the same port.
type mailServer struct {
	t      testing.TB
	addr   string
	caFile string
	tls    *tls.Config
	// implicit: TLS from the first byte; else STARTTLS is offered.
	implicit bool

	mu   sync.Mutex
	srv  *smtp.Server
	got  []received
	rcpt map[string]int // RCPT commands by recipient
	// answer, when set, answers the data of the nth (1-based) DATA
	// command: nil accepts it.
	answer func(n int) error
	// rcptAnswer, when set, answers RCPT TO.
	rcptAnswer func(to string) error
	datas      int
}

// startMailServer starts the server on a free loopback port.
func startMailServer(t testing.TB, implicit bool) *mailServer {
	t.Helper()
	dir := t.TempDir()
	s := &mailServer{t: t, implicit: implicit, caFile: filepath.Join(dir, "ca.pem"), rcpt: map[string]int{}}
	s.tls = testCertificate(t, s.caFile)
	s.start("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

// start listens on addr (the same port again after stop).
func (s *mailServer) start(addr string) {
	s.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	if s.implicit {
		l = tls.NewListener(l, s.tls)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain, srv.TLSConfig = "mx.ca.test", s.tls
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nopLogger{}
	s.mu.Lock()
	s.srv, s.addr = srv, l.Addr().String()
	s.mu.Unlock()
	go srv.Serve(l)
}

// stop closes the listener and every connection.
func (s *mailServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// received returns the mails accepted so far.
func (s *mailServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// config returns the smtp section for this server.
func (s *mailServer) config(mechanism, secretFile string) config.SMTP {
	sec := ingest.SecurityStartTLS
	if s.implicit {
		sec = ingest.SecurityTLS
	}
	c := config.SMTP{Addr: s.addr, Security: sec, CAFile: s.caFile, From: "Support Desk <support@ca.test>",
		Username: testUser, Mechanism: mechanism, Timeout: 5 * time.Second}
	if secretFile != "" {
		c.Secret = &ingest.Secret{File: secretFile}
	}
	return c
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

// session is one client's session; it must authenticate before MAIL.
type session struct {
	s      *mailServer
	authed bool
	from   string
	to     []string
}

func (x *session) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login, "XOAUTH2"}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	ok := func() error { x.authed = true; return nil }
	bad := &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error {
			if user == testUser && pass == testPassword {
				return ok()
			}
			return bad
		}), nil
	case sasl.Login:
		return &loginServer{check: func(user, pass string) error {
			if user == testUser && pass == testPassword {
				return ok()
			}
			return bad
		}}, nil
	case "XOAUTH2":
		return saslServerFunc(func(resp []byte) ([]byte, bool, error) {
			if string(resp) == "user="+testUser+"\x01auth=Bearer "+testToken+"\x01\x01" {
				return nil, true, ok()
			}
			return nil, true, bad
		}), nil
	}
	return nil, errors.New("unknown mechanism")
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if !x.authed {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.mu.Lock()
	x.s.rcpt[to]++
	answer := x.s.rcptAnswer
	x.s.mu.Unlock()
	if answer != nil {
		if err := answer(to); err != nil {
			return err
		}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	x.s.datas++
	if x.s.answer != nil {
		if err := x.s.answer(x.s.datas); err != nil {
			return err
		}
	}
	for _, to := range x.to {
		x.s.got = append(x.s.got, received{From: x.from, To: to, Data: data})
	}
	return nil
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN: the user name as the
// initial response, then the password asked for with "Password:".
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch {
	case l.step == 1 && resp == nil:
		return []byte("Username:"), false, nil
	case l.step == 1 || l.step == 2 && l.user == "":
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

type saslServerFunc func(resp []byte) ([]byte, bool, error)

func (f saslServerFunc) Next(resp []byte) ([]byte, bool, error) { return f(resp) }

// testCertificate makes a CA, writes it to caFile, and returns a server
// configuration with a certificate it signed for 127.0.0.1.
func testCertificate(t testing.TB, caFile string) *tls.Config {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, leafKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outbox test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
}

// writeSecret writes a secret file and returns its path.
func writeSecret(t testing.TB, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startJetStream starts an embedded nats-server on a free loopback port
// and returns a function that opens an Outbox on a connection of its own,
// as a replica would.
func startJetStream(t *testing.T) func(opts Options) *Outbox {
	t.Helper()
	s := natstest.Start(t)
	return func(opts Options) *Outbox {
		t.Helper()
		ctx := testContext(t)
		js := natstest.Connect(t, s, "outbox-test")
		if opts.From == "" {
			opts.From = "Support Desk <support@ca.test>"
		}
		o, err := Open(ctx, js, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return o
	}
}

// testContext is a context that ends with the test, at the latest in a
// minute.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run runs o.Run with s until the test ends, or until the returned
// function is called (which waits for Run to return).
func run(t *testing.T, o *Outbox, s Sender) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, s) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitState waits (bounded) until the mail id has state, and returns its
// status.
func waitState(t *testing.T, o *Outbox, id string, state State) Status {
	t.Helper()
	var st Status
	var err error
	for range 1500 {
		st, err = o.Status(testContext(t), id)
		if err == nil && st.State == state {
			return st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: status %+v, %v; want %s", id, st, err, state)
	return st
}

// countByMessageID counts the mails received by Message-ID.
func countByMessageID(t *testing.T, got []received) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range got {
		i := bytes.Index(r.Data, []byte("Message-Id: <"))
		if i < 0 {
			t.Fatalf("a mail without Message-Id:\n%s", r.Data)
		}
		rest := r.Data[i+len("Message-Id: <"):]
		out[string(rest[:bytes.IndexByte(rest, '>')])]++
	}
	return out
}

// mustSender returns the SMTP sender of cfg.
func mustSender(t testing.TB, cfg config.SMTP) *SMTPSender {
	t.Helper()
	s, err := NewSMTPSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
