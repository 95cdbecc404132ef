package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestStartEmbeddedStoreInUse: a second server on the same store directory
// is refused, naming the first one's process, and the directory is free
// again once the first stops.
func TestStartEmbeddedStoreInUse(t *testing.T) {
	cfg := EmbeddedConfig{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, MaxStore: 16 << 20, MaxMemory: 16 << 20}
	first, err := StartEmbedded(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	defer first.Shutdown()

	second, err := StartEmbedded(cfg, zerolog.Nop())
	if err == nil {
		second.Shutdown()
		t.Fatal("a second server started on the same store directory")
	}
	var inUse *StoreInUseError
	if !errors.As(err, &inUse) || inUse.Holder.PID != os.Getpid() {
		t.Errorf("error %v (%T), want a *StoreInUseError naming pid %d", err, err, os.Getpid())
	}
	for _, want := range []string{"store directory " + cfg.StoreDir, "is in use by another ticketrouter", fmt.Sprintf("pid %d on host ", os.Getpid()), "nats.embedded.store_dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	first.Shutdown()
	third, err := StartEmbedded(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	third.Shutdown()
}

// TestStartEmbeddedPortInUse: a port another process listens on is
// reported at once, naming the address and the setting, and the store
// directory is not left locked.
func TestStartEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	cfg := EmbeddedConfig{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: port, MaxStore: 16 << 20, MaxMemory: 16 << 20}

	start := time.Now()
	s, err := StartEmbedded(cfg, zerolog.Nop())
	took := time.Since(start)
	if err == nil {
		s.Shutdown()
		t.Fatal("started on a port in use")
	}
	for _, want := range []string{"127.0.0.1:" + strconv.Itoa(port), "address already in use", "nats.embedded.port"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v is not EADDRINUSE", err)
	}
	if took >= embeddedReadyTimeout/2 {
		t.Errorf("reported after %s, not at once", took)
	}

	cfg.Port = -1
	s, err = StartEmbedded(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("the store directory stayed locked: %v", err)
	}
	s.Shutdown()
}

// TestRedactURL: passwords and tokens never reach a message, whatever the
// form of the URL.
func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://agent:pa55word@127.0.0.1:4222", "nats://agent:xxxxx@127.0.0.1:4222"},
		{"nats://s3cr3t-token@n1:4222", "nats://xxxxx@n1:4222"},
		{"nats://a:b@n1:4222,nats://n2:4222,tls://c:d@n3", "nats://a:xxxxx@n1:4222,nats://n2:4222,tls://c:xxxxx@n3"},
		{"tls://u:p%40ss@n1", "tls://u:xxxxx@n1"},
		{"u:pw@n1:4222", "u:xxxxx@n1:4222"},
		{"nats://u:pa/ss@n1:bad:port", "nats://u:xxxxx@n1:bad:port"},
		{"nats://u:@n1", "nats://u:xxxxx@n1"},
	} {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestConnectRedactsURL: a password in the URL is in no error, from a
// server that does not answer or from a URL that does not parse.
func TestConnectRedactsURL(t *testing.T) {
	const secret = "hunter2-Secret"
	for _, url := range []string{
		"nats://agent:" + secret + "@127.0.0.1:1",
		"nats://agent:" + secret + "@127.0.0.1:notaport",
		"nats://" + secret + "@127.0.0.1:1",
		"nats://agent:" + strings.ReplaceAll(secret, "-", "%2D") + "@127.0.0.1:1",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		nc, err := Connect(ctx, NATSConfig{URL: url}, nil, "test", zerolog.Nop())
		cancel()
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", RedactURL(url))
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "%2D") {
			t.Errorf("error shows the secret: %q", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:") || !strings.Contains(err.Error(), redacted) {
			t.Errorf("error %q does not name the server, redacted", err)
		}
	}
}
