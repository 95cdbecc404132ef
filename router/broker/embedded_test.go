package broker

import (
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
