package mtatest

// The LMTP gate: a TCP relay in the test process between Postfix and the
// Dovecot's LMTP listener. Open, it passes every connection through;
// paused, it answers each one "421" and hangs up, which Postfix takes as
// a temporary failure: the mail stays queued (deferred) and is retried.
// Pausing this way takes effect at once, with no reload of Postfix.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// gate relays connections from its listener to target unless paused.
type gate struct {
	ln     net.Listener
	target string
	paused atomic.Bool

	mu     sync.Mutex
	conns  map[net.Conn]bool // open connections, both sides, closed by close
	closed bool
	wg     sync.WaitGroup
}

// newGate listens on a free 127.0.0.1 port and relays to target.
func newGate(target string) (*gate, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lmtp gate: %w", err)
	}
	g := &gate{ln: ln, target: target, conns: map[net.Conn]bool{}}
	g.wg.Add(1)
	go g.serve()
	return g, nil
}

// addr is where Postfix delivers: "127.0.0.1:PORT".
func (g *gate) addr() string { return g.ln.Addr().String() }

func (g *gate) serve() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return // closed
		}
		if !g.track(c) {
			c.Close()
			return
		}
		g.wg.Add(1)
		go g.handle(c)
	}
}

// track adds c to the open connections; false once the gate is closed.
func (g *gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.conns[c] = true
	return true
}

func (g *gate) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *gate) handle(c net.Conn) {
	defer g.wg.Done()
	defer g.untrack(c)
	if g.paused.Load() {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "421 4.3.2 mtatest: delivery paused\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", g.target, 5*time.Second)
	if err != nil {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "421 4.4.1 mtatest: LMTP server unreachable\r\n")
		return
	}
	if !g.track(up) {
		up.Close()
		return
	}
	defer g.untrack(up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// close stops listening, drops every open connection and waits for the
// gate's goroutines to end.
func (g *gate) close() error {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	err := g.ln.Close()
	g.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
