package agents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrThrottled is the error of a login refused, before its password is
// looked at, because its agent name or its client address failed too
// often. The *ThrottledError that wraps it says until when. It is the
// same for names that are not agents.
var ErrThrottled = errors.New("too many failed logins")

// ThrottledError is a login refused by throttling until Until.
type ThrottledError struct {
	Until time.Time
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v: try again after %s", ErrThrottled, e.Until.UTC().Format("15:04:05 UTC"))
}

// Unwrap makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Throttle is how logins are throttled. Failures count per agent name
// (whether or not it is an agent) and per client address (IPv6 by /64);
// after the limit within Window, the name or address is locked out for
// Lockout, doubled at each further lockout up to MaxLockout. A successful
// login clears its name's count, not its address's.
type Throttle struct {
	AgentFailures int           // failures of one name that lock it; default 5
	AddrFailures  int           // failures from one address that lock it; default 20
	Window        time.Duration // failures older than this are forgotten; default 15 min
	Lockout       time.Duration // the first lockout; default 15 min
	MaxLockout    time.Duration // the longest lockout; default 24 h
}

func (t Throttle) withDefaults() Throttle {
	orDefault(&t.AgentFailures, 5)
	orDefault(&t.AddrFailures, 20)
	orDefault(&t.Window, 15*time.Minute)
	orDefault(&t.Lockout, 15*time.Minute)
	orDefault(&t.MaxLockout, 24*time.Hour)
	t.MaxLockout = max(t.MaxLockout, t.Lockout)
	return t
}

// orDefault sets *v to def when it is not positive.
func orDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// counter is the failures of one name or address, in the logins bucket.
type counter struct {
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure"`
	Lockouts    int       `json:"lockouts"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// agentKey and addrKey are the logins bucket's keys: hashed, so that
// neither names tried nor addresses are readable there.
func agentKey(name string) string {
	sum := sha256.Sum256([]byte(normalize(name)))
	return "agent." + hex.EncodeToString(sum[:])
}

func addrKey(addr netip.Addr) string {
	if addr.Is6() && !addr.Is4In6() {
		p, _ := addr.Prefix(64)
		addr = p.Addr()
	}
	sum := sha256.Sum256([]byte(addr.Unmap().String()))
	return "addr." + hex.EncodeToString(sum[:])
}

// lockedUntil returns the latest time until which one of keys is locked
// out, or the zero time.
func (s *Sessions) lockedUntil(ctx context.Context, now time.Time, keys ...string) (time.Time, error) {
	var until time.Time
	for _, key := range keys {
		c, _, err := s.counter(ctx, key)
		if err != nil {
			return time.Time{}, err
		}
		if c.LockedUntil.After(now) && c.LockedUntil.After(until) {
			until = c.LockedUntil
		}
	}
	return until, nil
}

// counter reads key's counter and its revision (0 when there is none).
func (s *Sessions) counter(ctx context.Context, key string) (counter, uint64, error) {
	var c counter
	e, err := s.logins.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return c, 0, nil
	case err != nil:
		return c, 0, fmt.Errorf("read login failures: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return counter{}, e.Revision(), nil // unreadable: start again
	}
	return c, e.Revision(), nil
}

// maxCASAttempts bounds the compare-and-set loops: each conflict means
// another replica wrote meanwhile, so a few attempts always suffice.
const maxCASAttempts = 10

// fail counts a failure of key, locking it when it reaches limit.
func (s *Sessions) fail(ctx context.Context, now time.Time, key string, limit int) error {
	for range maxCASAttempts {
		c, rev, err := s.counter(ctx, key)
		if err != nil {
			return err
		}
		if now.Sub(c.LastFailure) > s.throttle.Window {
			c.Failures = 0
		}
		c.Failures++
		c.LastFailure = now
		if c.Failures >= limit {
			lockout := s.throttle.Lockout
			for range min(c.Lockouts, 30) {
				lockout = min(2*lockout, s.throttle.MaxLockout)
			}
			c.Lockouts++
			c.Failures = 0
			c.LockedUntil = now.Add(lockout)
		}
		data, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("count login failure: %w", err)
		}
		if rev == 0 {
			_, err = s.logins.Create(ctx, key, data)
		} else {
			_, err = s.logins.Update(ctx, key, data, rev)
		}
		switch {
		case err == nil:
			return nil
		case !conflict(err):
			return fmt.Errorf("count login failure: %w", err)
		}
	}
	return fmt.Errorf("count login failure: %d conflicting writes", maxCASAttempts)
}

// conflict reports whether err is a compare-and-set conflict.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
