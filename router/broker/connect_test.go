package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
)

// startAuthServer starts a nats-server on a free loopback port with the
// given options (authentication, TLS) and returns it.
func startAuthServer(t *testing.T, adjust func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	adjust(opts)
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10 s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// writeFile writes data to name in dir and returns the path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testPKI makes a CA and a server certificate for 127.0.0.1 signed by it,
// written as PEM files; it returns the CA file and the server's TLS
// configuration.
func testPKI(t *testing.T, dir string) (caFile string, serverTLS *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	return caFile, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	}
}

// startOperatorServer starts a nats-server in operator (JWT) mode and
// returns it with a credentials file of a user it trusts.
func startOperatorServer(t *testing.T, dir string) (*server.Server, string) {
	t.Helper()
	operator, _ := nkeys.CreateOperator()
	opPub, _ := operator.PublicKey()
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		t.Fatal(err)
	}
	account, _ := nkeys.CreateAccount()
	accPub, _ := account.PublicKey()
	accJWT, err := jwt.NewAccountClaims(accPub).Encode(operator)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userSeed, _ := user.Seed()
	uc := jwt.NewUserClaims(userPub)
	uc.IssuerAccount = accPub
	userJWT, err := uc.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(userJWT, userSeed)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(accPub, accJWT); err != nil {
		t.Fatal(err)
	}
	s := startAuthServer(t, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{opClaims}
		o.AccountResolver = resolver
	})
	return s, writeFile(t, dir, "user.creds", creds)
}

// TestConnectAuthentication: the service connects with each kind of
// credentials it supports and TLS, a wrong one is refused with an error
// that never holds the secret.
func TestConnectAuthentication(t *testing.T) {
	dir := t.TempDir()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	caFile, serverTLS := testPKI(t, dir)
	otherCA, _ := testPKI(t, t.TempDir())

	const password = "s3cret-Pa55word"
	t.Setenv("TEST_NATS_PASSWORD", password)
	t.Setenv("TEST_NATS_WRONG", "not-the-password")
	passwordServer := startAuthServer(t, func(o *server.Options) { o.Username, o.Password = "ticketrouter", password })
	nkeyServer := startAuthServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	tlsServer := startAuthServer(t, func(o *server.Options) { o.TLSConfig, o.TLS = serverTLS, true })
	tlsURL := strings.Replace(tlsServer.ClientURL(), "nats://", "tls://", 1)
	jwtServer, creds := startOperatorServer(t, dir)

	tests := []struct {
		name    string
		cfg     NATSConfig
		wantErr string // "" connects
		secret  string // must not appear in the error
	}{
		{"user and password", NATSConfig{URL: passwordServer.ClientURL(), User: "ticketrouter", Password: &ingest.Secret{Env: "TEST_NATS_PASSWORD"}}, "", ""},
		{"wrong password", NATSConfig{URL: passwordServer.ClientURL(), User: "ticketrouter", Password: &ingest.Secret{Env: "TEST_NATS_WRONG"}}, "Authorization Violation", "not-the-password"},
		{"no credentials", NATSConfig{URL: passwordServer.ClientURL()}, "Authorization Violation", ""},
		{"nkey seed from a file", NATSConfig{URL: nkeyServer.ClientURL(), NKeySeed: &ingest.Secret{File: writeFile(t, dir, "seed", seed)}}, "", ""},
		{"another nkey", NATSConfig{URL: nkeyServer.ClientURL(), NKeySeed: &ingest.Secret{File: writeFile(t, dir, "other", otherSeed)}}, "Authorization Violation", string(otherSeed)},
		{"not an nkey seed", NATSConfig{URL: nkeyServer.ClientURL(), NKeySeed: &ingest.Secret{File: writeFile(t, dir, "junk", []byte("SUAJUNKJUNKJUNK"))}}, "nats.nkey_seed: not a valid NKey seed", "SUAJUNKJUNKJUNK"},
		{"credentials file", NATSConfig{URL: jwtServer.ClientURL(), Credentials: creds}, "", ""},
		{"credentials file missing", NATSConfig{URL: jwtServer.ClientURL(), Credentials: filepath.Join(dir, "none.creds")}, "no such file", ""},
		{"TLS with the CA", NATSConfig{URL: tlsURL, CAFile: caFile}, "", ""},
		{"TLS with another CA", NATSConfig{URL: tlsURL, CAFile: otherCA}, "certificate", ""},
		{"CA file not PEM", NATSConfig{URL: tlsURL, CAFile: writeFile(t, dir, "bad.pem", []byte("nope"))}, "nats.ca_file: ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nc, err := Connect(ctx, tt.cfg, nil, "test", zerolog.Nop())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				defer nc.Close()
				if err := nc.Flush(); err != nil {
					t.Fatalf("connected but the server does not answer: %v", err)
				}
				return
			}
			if err == nil {
				nc.Close()
				t.Fatalf("connected; want an error with %q", tt.wantErr)
			}
			if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.wantErr)) {
				t.Errorf("error %q, want it to hold %q", err, tt.wantErr)
			}
			for _, s := range []string{tt.secret, password} {
				if s != "" && strings.Contains(fmt.Sprint(err), s) {
					t.Errorf("error %q shows a secret", err)
				}
			}
		})
	}
}
