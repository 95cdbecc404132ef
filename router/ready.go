package router

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// readiness is the state /readyz reports besides NATS: the IMAP connection
// of each mailbox this replica holds the lease of, with the cause of its
// last failure. A replica holding no mailbox (a standby) is ready.
type readiness struct {
	mu        sync.Mutex
	connected map[string]bool   // mailboxes this replica works, and whether connected
	why       map[string]string // the last connection failure of each, cause first
}

// connection records that mailbox's connection is up, or down because of
// err.
func (r *readiness) connection(mailbox string, up bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.connected == nil {
		r.connected, r.why = map[string]bool{}, map[string]string{}
	}
	r.connected[mailbox] = up
	if err != nil {
		r.why[mailbox] = err.Error()
	}
}

// hold records that this replica holds (or, with holds false, no longer
// holds) the lease of mailbox: a held mailbox counts as down until its
// watcher connects.
func (r *readiness) hold(mailbox string, holds bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.connected == nil {
		r.connected, r.why = map[string]bool{}, map[string]string{}
	}
	delete(r.why, mailbox)
	if holds {
		r.connected[mailbox] = false
	} else {
		delete(r.connected, mailbox)
	}
}

// notReady lists why the replica is not ready: NATS, JetStream, and each
// mailbox it holds that is not connected, with the cause.
func (r *readiness) notReady(nc *nats.Conn, provisioned bool) []string {
	var why []string
	if nc == nil || !nc.IsConnected() {
		reason := "NATS not connected"
		if nc != nil && nc.LastError() != nil {
			reason += ": " + nc.LastError().Error()
		}
		why = append(why, reason)
	}
	if !provisioned {
		why = append(why, "JetStream not provisioned")
	}
	r.mu.Lock()
	for mailbox, up := range r.connected {
		if !up {
			reason := "IMAP mailbox " + mailbox + " not connected"
			if w := r.why[mailbox]; w != "" {
				reason += ": " + w
			}
			why = append(why, reason)
		}
	}
	r.mu.Unlock()
	sort.Strings(why)
	return why
}

// readyHandler serves /readyz: "ready", or 503 with the reasons, one a
// line.
func readyHandler(ready func() []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if why := ready(); len(why) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(why, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
	})
}
