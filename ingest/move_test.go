package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
)

// cutProxy forwards IMAP connections on loopback from a client to a
// server. The first time the client sends a command beginning with
// trigger ("UID MOVE"), the proxy does not forward it: it calls before
// with the command's arguments (to leave behind what a server that dies
// mid-command leaves) and closes both ends, so that the client never sees
// the command's answer. Later connections and commands pass through.
type cutProxy struct {
	ln      net.Listener
	target  string
	trigger string
	before  func(args string)

	mu    sync.Mutex
	fired bool
	conns []net.Conn
	wg    sync.WaitGroup
}

func startCutProxy(t *testing.T, target, trigger string, before func(args string)) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, trigger: trigger, before: before}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

// Fired reports whether the cut happened.
func (p *cutProxy) Fired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fired
}

func (p *cutProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		p.wg.Go(func() {
			io.Copy(client, server)
			client.Close()
		})
		p.wg.Go(func() {
			defer server.Close()
			defer client.Close()
			r := bufio.NewReader(client)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, rest, ok := strings.Cut(line, " "); ok && p.cut(rest) {
					return
				}
				if _, err := io.WriteString(server, line); err != nil {
					return
				}
			}
		})
	}
}

// cut reports whether the command (without its tag) is the one to cut,
// after calling before.
func (p *cutProxy) cut(command string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fired || len(command) < len(p.trigger) || !strings.EqualFold(command[:len(p.trigger)], p.trigger) {
		return false
	}
	p.fired = true
	p.before(strings.TrimSpace(command[len(p.trigger):]))
	return true
}

// copyPart copies the first of the UIDs of set (by UID order), a fraction
// of them, from INBOX to dest over a connection of its own: what Dovecot
// leaves behind when it dies during a MOVE of set (its MOVE copies, then
// expunges).
func copyPart(t *testing.T, srv imaptest.Server, set, dest string, fraction float64) {
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Errorf("side connection: %v", err)
		return
	}
	defer c.Close()
	if err := c.Login(srv.Username(), srv.Password()).Wait(); err != nil {
		t.Errorf("side connection: %v", err)
		return
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Errorf("side connection: %v", err)
		return
	}
	var uidSet imap.UIDSet
	for _, r := range strings.Split(set, ",") {
		lo, hi, _ := strings.Cut(r, ":")
		start, err1 := strconv.ParseUint(lo, 10, 32)
		stop, err2 := strconv.ParseUint(cmp.Or(hi, lo), 10, 32)
		if err1 != nil || err2 != nil {
			t.Errorf("side connection: %q is no UID set of numbers", set)
			return
		}
		uidSet = append(uidSet, imap.UIDRange{Start: imap.UID(start), Stop: imap.UID(stop)})
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{uidSet}}, nil).Wait()
	if err != nil {
		t.Errorf("side connection: %v", err)
		return
	}
	uids := found.AllUIDs()
	slices.Sort(uids)
	part := uids[:int(float64(len(uids))*fraction)]
	if _, err := c.Copy(imap.UIDSetNum(part...), dest).Wait(); err != nil {
		t.Errorf("side connection: copy: %v", err)
		return
	}
	t.Logf("the server died during %d mails' move, %d of them copied to %s", len(uids), len(part), dest)
	c.Logout().Wait()
}

// TestWatcherMoveCutOff: Dovecot dies during a batch UID MOVE after it
// copied part of the batch to Processed, before it expunged anything from
// INBOX, and the watcher never sees the MOVE's answer. After the
// reconnect, each mail is in Processed exactly once and INBOX is empty:
// the mails already copied are not moved a second time. Among the mails
// are some without a Message-ID, some sharing one, and two identical
// ones, one on each side of the cut. The same for the COPY a server
// without MOVE is given.
func TestWatcherMoveCutOff(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     imaptest.Options
		trigger  string
		fraction float64 // of the mails copied before the server died
	}{
		{"move", imaptest.Options{}, "UID MOVE ", 0.5},
		{"move, all copied", imaptest.Options{}, "UID MOVE ", 1},
		{"copy fallback", imaptest.Options{NoMove: true}, "UID COPY ", 0.5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := imaptest.StartDovecot(t, tt.opts)
			const n = 60
			var raws [][]byte
			for i := range n {
				raw := testMail(fmt.Sprintf("cut-%d@test", i))
				switch i {
				case 10, 40: // no Message-ID
					raw = fmt.Appendf(nil, "From: customer@example.com\r\nSubject: no id %d\r\n\r\nPlease reset my password (%d).\r\n", i, i)
				case 20, 45: // one Message-ID, two mails
					raw = fmt.Appendf(nil, "From: customer@example.com\r\nSubject: shared id %d\r\nMessage-ID: <shared@test>\r\n\r\nPlease reset (%d).\r\n", i, i)
				case 29: // the same bytes as the next mail, which the cut leaves uncopied
					raw = testMail("twin@test")
				case 30:
					raw = slices.Clone(raws[29])
				}
				raws = append(raws, raw)
			}
			srv.AppendAll(t, "INBOX", raws)
			proxy := startCutProxy(t, srv.Addr(), tt.trigger, func(args string) {
				set, dest, _ := strings.Cut(args, " ")
				copyPart(t, srv, set, strings.Trim(dest, "\"\r\n"), tt.fraction)
			})
			rec := newRecorder()
			startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) { c.Addr = proxy.Addr() })
			eventually(t, time.Minute, "INBOX emptied", func() bool { return proxy.Fired() && len(srv.UIDs(t, "INBOX")) == 0 })
			got := srv.Bodies(t, "Processed")
			slices.SortFunc(got, bytes.Compare)
			want := slices.Clone(raws)
			slices.SortFunc(want, bytes.Compare)
			if len(got) != len(want) {
				t.Fatalf("Processed holds %d mails, want each of the %d exactly once", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("Processed holds other mails than INBOX did: %q where %q", got[i], want[i])
				}
			}
		})
	}
}
