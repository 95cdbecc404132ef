package testproc

import (
	"crypto/tls"
	"testing"
)

// TestWriteCertificate: a server presenting the written certificate is
// trusted by ClientTLS for 127.0.0.1.
func TestWriteCertificate(t *testing.T) {
	c, err := WriteCertificate(t.TempDir(), "testproc")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	cfg, err := c.ClientTLS()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatalf("handshake with the written certificate: %v", err)
	}
	conn.Close()
}
