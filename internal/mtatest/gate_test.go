package mtatest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestGate: open, the gate relays both ways to its target; paused, it
// answers 421 and hangs up; with the target gone, it answers 421 too.
func TestGate(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() { // an echo server that greets first
				defer c.Close()
				c.Write([]byte("220 target\r\n"))
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte("echo " + line))
				}
			}()
		}
	}()
	unreachable, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := unreachable.Addr().String()
	unreachable.Close()

	for _, tc := range []struct {
		name   string
		target string
		paused bool
		want   []string // lines read, "hello" sent after the first
	}{
		{"open", target.Addr().String(), false, []string{"220 target", "echo hello"}},
		{"paused", target.Addr().String(), true, []string{"421 4.3.2 mtatest: delivery paused"}},
		{"target gone", gone, false, []string{"421 4.4.1 mtatest: LMTP server unreachable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := newGate(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			defer g.close()
			g.paused.Store(tc.paused)
			c, err := net.DialTimeout("tcp", g.addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			// As an LMTP client does: the greeting first, then a command,
			// then its answer (or the end of the connection).
			var got []string
			for len(got) <= len(tc.want) {
				line, err := r.ReadString('\n')
				if err != nil {
					break
				}
				got = append(got, strings.TrimRight(line, "\r\n"))
				if len(got) == len(tc.want) && !strings.HasPrefix(line, "421") {
					break
				}
				c.Write([]byte("hello\r\n"))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("read %q, want %q", got, tc.want)
			}
		})
	}
}
