package router

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket listens on a unix datagram socket as systemd does for
// NOTIFY_SOCKET: the name to give the Notifier, and the socket to read
// from. abstract uses Linux's abstract namespace ("@name").
func notifySocket(t *testing.T, abstract bool) (string, *net.UnixConn) {
	t.Helper()
	// Not t.TempDir(): a socket path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	name := filepath.Join(dir, "notify.sock")
	if abstract {
		name = "@" + name
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return name, conn
}

// readNotify reads one datagram, waiting up to 10 s.
func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

// TestNotifier: each Notify is one datagram of VARIABLE=value lines on
// the socket NOTIFY_SOCKET names, a path or an abstract name; without
// NOTIFY_SOCKET the Notifier is nil and does nothing.
func TestNotifier(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		name, conn := notifySocket(t, abstract)
		n, err := NewNotifier(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify("READY=1", "STATUS=running: 9 accounts"); err != nil {
			t.Fatal(err)
		}
		if got := readNotify(t, conn); got != "READY=1\nSTATUS=running: 9 accounts\n" {
			t.Errorf("%s: datagram %q", name, got)
		}
		if err := n.Notify("STOPPING=1"); err != nil {
			t.Fatal(err)
		}
		if got := readNotify(t, conn); got != "STOPPING=1\n" {
			t.Errorf("%s: datagram %q", name, got)
		}
	}

	n, err := NewNotifier("")
	if n != nil || err != nil {
		t.Errorf("NewNotifier(\"\") = %v, %v; want nil, nil", n, err)
	}
	if err := n.Notify("READY=1"); err != nil {
		t.Errorf("nil Notifier: %v", err)
	}
	if _, err := NewNotifier("vsock:2:1234"); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Errorf("NewNotifier(vsock): %v, want an error naming NOTIFY_SOCKET", err)
	}
	// A line break would start another variable: the state is refused.
	name, _ := notifySocket(t, false)
	n, _ = NewNotifier(name)
	if err := n.Notify("STATUS=a\nREADY=1"); err == nil {
		t.Error("a state with a line break was sent")
	}
}
