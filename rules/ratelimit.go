package rules

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
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
// colour's rate-limited queue and a flood cannot bury the real requests.
// Mail that is never answered (ignored, dead letters) is not counted.
func (p *Policy) RateLimit(req *ingest.Request, d *Decision, lim RateLimiter, now time.Time) {
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
	d.Guidance = append(d.Guidance, p.expand(p.file.Notes.RateLimited, d, reason)...)
}

// MemoryRateLimiter is a RateLimiter for one process: a log of recent
// requests per key, pruned as it goes, so that its memory is bounded by
// the requests of the longest window.
type MemoryRateLimiter struct {
	mu     sync.Mutex
	events map[string][]rateEvent
	calls  int
}

type rateEvent struct {
	id string
	at time.Time
}

// Count implements RateLimiter.
func (m *MemoryRateLimiter) Count(key, id string, window time.Duration, now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events = map[string][]rateEvent{}
	}
	if m.calls++; m.calls%1024 == 0 { // now and then, drop keys gone quiet
		for k, evs := range m.events {
			if len(evs) == 0 || now.Sub(evs[len(evs)-1].at) > 24*time.Hour {
				delete(m.events, k)
			}
		}
	}
	evs := m.events[key]
	kept := evs[:0]
	seen := false
	for _, e := range evs {
		if now.Sub(e.at) < window {
			kept = append(kept, e)
			seen = seen || e.id == id
		}
	}
	if !seen {
		kept = append(kept, rateEvent{id, now})
	}
	m.events[key] = kept
	return len(kept)
}
