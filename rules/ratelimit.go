package rules

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
)

// rateLimit caps the requests of one sender or account in a window.
type rateLimit struct {
	Requests int           `yaml:"requests"` // 0: no limit
	Per      time.Duration `yaml:"per"`
}

type rateLimitsDef struct {
	PerSender  rateLimit `yaml:"per_sender"`
	PerAccount rateLimit `yaml:"per_account"`
}

// RateLimiter counts the requests of a key (a sender, an account) in a
// sliding window. Implementations are safe for concurrent use; one shared
// by several replicas makes the limits hold across them.
type RateLimiter interface {
	// Count records request id under key at now and returns how many
	// distinct requests key has had in the window up to now, this one
	// included. A request id recorded before under key is not counted
	// again: a mail decided twice (a retry) is one request.
	Count(key, id string, window time.Duration, now time.Time) int
}

// RateLimit applies the policy's rate limits to a decision: beyond them the
// mail is still ticketed, but marked RateLimited, so that it goes to the
// rate-limited queue and a flood cannot bury the real requests.
// Mail that is never answered (ignored, dead letters) is not counted.
func (p *Policy) RateLimit(req *mail.Request, d *Decision, lim RateLimiter, now time.Time) {
	if d.Disposition == DispositionIgnored || d.Disposition == DispositionDeadletter {
		return
	}
	var over []string
	limit := func(key, who string, l rateLimit) {
		if l.Requests <= 0 || key == "" {
			return
		}
		if n := lim.Count(key, req.ID, l.Per, now); n > l.Requests {
			over = append(over, fmt.Sprintf("%s: %d requests in %s, at most %d", who, n, l.Per, l.Requests))
		}
	}
	sender := d.Sender
	if sender == "" { // an ambiguous From still counts, as written
		sender = strings.ToLower(strings.TrimSpace(req.From.Address))
	}
	limit("sender:"+sender, "sender "+sender, p.file.RateLimits.PerSender)
	if d.Account != nil {
		limit("account:"+d.Account.ID, "account "+d.Account.ID, p.file.RateLimits.PerAccount)
	}
	if len(over) == 0 {
		return
	}
	d.RateLimited = true
	reason := strings.Join(over, "; ")
	d.trace("rate limited: %s", reason)
	d.guide(p.expand(p.file.Notes.RateLimited, d, reason))
}

// MemoryRateLimiter is a RateLimiter for one process: a log of recent
// requests per key, pruned as it goes, so that its memory is bounded by
// the requests of the longest window. A count costs the same however many
// requests the log holds.
//
// A request id is kept as a 64-bit hash, and a time as nanoseconds: the
// log holds no pointers, which the garbage collector would otherwise
// follow at every collection, for every request of every window (a
// backlog of 20,000 mails left 4.7 MB of them). Two ids of one key whose
// hashes collide, once in 2^64, count as one request.
type MemoryRateLimiter struct {
	mu    sync.Mutex
	logs  map[string]*rateLog
	calls int
	seed  maphash.Seed
}

// rateLog is the requests of one key within its window, oldest first.
type rateLog struct {
	events []rateEvent
	ids    map[uint64]int // request id's hash -> its events in the log
}

type rateEvent struct {
	id uint64 // maphash of the request id
	at int64  // Unix nanoseconds
}

// Count implements RateLimiter.
func (m *MemoryRateLimiter) Count(key, id string, window time.Duration, now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.logs == nil {
		m.logs = map[string]*rateLog{}
		m.seed = maphash.MakeSeed()
	}
	at := now.UnixNano()
	if m.calls++; m.calls%1024 == 0 { // now and then, drop keys gone quiet
		for k, l := range m.logs {
			if len(l.events) == 0 || at-l.events[len(l.events)-1].at > int64(24*time.Hour) {
				delete(m.logs, k)
			}
		}
	}
	l := m.logs[key]
	if l == nil {
		l = &rateLog{ids: map[uint64]int{}}
		m.logs[key] = l
	}
	drop := 0
	for drop < len(l.events) && at-l.events[drop].at >= int64(window) {
		if l.ids[l.events[drop].id]--; l.ids[l.events[drop].id] <= 0 {
			delete(l.ids, l.events[drop].id)
		}
		drop++
	}
	l.events = l.events[drop:] // the next growth copies only what is left
	h := maphash.String(m.seed, id)
	if l.ids[h] == 0 {
		l.events = append(l.events, rateEvent{h, at})
		l.ids[h]++
	}
	return len(l.events)
}
