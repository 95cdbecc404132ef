package rules

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
)

func TestMemoryRateLimiter(t *testing.T) {
	var m MemoryRateLimiter
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i, tt := range []struct {
		key, id string
		at      time.Duration
		want    int
	}{
		{"a", "m1", 0, 1},
		{"a", "m2", time.Minute, 2},
		{"a", "m2", 2 * time.Minute, 2},                 // the same mail again: not counted twice
		{"b", "m3", 3 * time.Minute, 1},                 // keys are apart
		{"a", "m4", 60*time.Minute + 30*time.Second, 2}, // m1 left the window, m2 not yet
		{"a", "m5", 200 * time.Minute, 1},
	} {
		if got := m.Count(tt.key, tt.id, time.Hour, t0.Add(tt.at)); got != tt.want {
			t.Errorf("step %d: Count(%s, %s) = %d, want %d", i, tt.key, tt.id, got, tt.want)
		}
	}
}

// TestMemoryRateLimiterNoPointers: what the log keeps for each request
// (the events and the ids of a key) holds no pointer, for the collector
// to follow at every collection.
func TestMemoryRateLimiterNoPointers(t *testing.T) {
	log := reflect.TypeFor[rateLog]()
	events, _ := log.FieldByName("events")
	ids, _ := log.FieldByName("ids")
	kept := []reflect.Type{ids.Type.Key(), ids.Type.Elem()}
	for f := range events.Type.Elem().Fields() {
		kept = append(kept, f.Type)
	}
	for _, typ := range kept {
		if typ.Kind() > reflect.Complex128 { // strings, slices, maps, pointers, structs ...
			t.Errorf("the log keeps a %s for each request: a pointer for the collector", typ)
		}
	}
}

// BenchmarkMemoryRateLimiter counts requests of one busy key whose window
// holds n of them: the cost must not grow with n (it did: every count
// walked the whole log).
func BenchmarkMemoryRateLimiter(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var m MemoryRateLimiter
			t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
			step := time.Hour / time.Duration(n) // n requests a window, steady
			ids := make([]string, 4096)
			for i := range ids {
				ids[i] = fmt.Sprint("m", i)
			}
			i := 0
			for b.Loop() {
				m.Count("busy", ids[i%len(ids)], time.Hour, t0.Add(time.Duration(i)*step))
				i++
			}
		})
	}
}

// TestRateLimit: the sixth request of a sender within the hour is still
// decided as usual but marked, with a note; retries of one mail and mail
// that is never answered do not count.
func TestRateLimit(t *testing.T) {
	p := DefaultPolicy()
	if l := p.file.RateLimits.PerSender; l.Requests != 5 || l.Per != time.Hour {
		t.Fatalf("default per-sender limit %+v", l)
	}
	dir := mustDirectory(t)
	var lim MemoryRateLimiter
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	route := func(raw string) (*mail.Request, *Decision) {
		req, d := decide(t, p, dir, raw)
		p.RateLimit(req, d, &lim, now)
		now = now.Add(time.Minute)
		return req, d
	}
	auto := msg("someone@elsewhere.example", "Out of office", "away", "Auto-Submitted: auto-replied")
	for range 10 {
		if _, d := route(auto); d.RateLimited {
			t.Fatal("ignored mail was rate limited")
		}
	}
	for i := 1; i <= 7; i++ {
		raw := msg("Someone <someone@elsewhere.example>", "Reset", fmt.Sprintf("reset acmecorp.example please (%d)", i))
		_, d := route(raw)
		if d.RateLimited != (i > 5) {
			t.Errorf("request %d: rate_limited %v", i, d.RateLimited)
		}
		if d.Disposition != "needs-verification" {
			t.Errorf("request %d: disposition %s: a rate limit must not change the decision", i, d.Disposition)
		}
		if i == 6 && !slices.ContainsFunc(d.Guidance, func(g string) bool {
			return strings.Contains(g, "sender someone@elsewhere.example: 6 requests in 1h0m0s, at most 5")
		}) {
			t.Errorf("no rate-limit note: %q", d.Guidance)
		}
		if i == 1 { // the same mail decided again is the same request
			if _, again := route(raw); again.RateLimited {
				t.Error("a retry was counted")
			}
		}
	}
	// Per account: ten requests from different senders about one account.
	lim = MemoryRateLimiter{}
	for i := 1; i <= 11; i++ {
		_, d := route(msg(fmt.Sprintf("user%d@elsewhere.example", i), "Reset", "reset darkwood.example"))
		if d.RateLimited != (i > 10) {
			t.Errorf("account request %d: rate_limited %v", i, d.RateLimited)
		}
	}
}

func TestRateLimitPolicyErrors(t *testing.T) {
	y := strings.Replace(string(DefaultPolicyYAML()), "per_sender: {requests: 5, per: 1h}", "per_sender: {requests: 5, per: 0s}", 1)
	_, err := ParsePolicy("p.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "rate_limits.per_sender: want requests >= 0") {
		t.Fatalf("err = %v", err)
	}
}
