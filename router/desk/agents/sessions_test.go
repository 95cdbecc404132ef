package agents

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/internal/natstest"
	"github.com/ticketrouter/ticketrouter/router/broker"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// startNATS starts an embedded nats-server on loopback, shut down when
// the test ends.
func startNATS(t *testing.T) *broker.Embedded { return natstest.Start(t) }

// openSessions opens Sessions on its own connection to s, as one desk
// replica does.
func openSessions(t *testing.T, s *broker.Embedded, dir *Directory, opts Options) *Sessions {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := broker.Connect(ctx, broker.NATSConfig{}, s, "desk-test", zerolog.Nop())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := OpenSessions(ctx, js, dir, opts)
	if err != nil {
		t.Fatalf("OpenSessions: %v", err)
	}
	return sess
}

// setup returns a directory of writeAgents' agents and a clock.
func setup(t *testing.T) (*broker.Embedded, *Directory, *clock) {
	t.Helper()
	dir, err := LoadDirectory(writeAgents(t))
	if err != nil {
		t.Fatal(err)
	}
	return startNATS(t), dir, newClock()
}

// request is a request from addr (host:port) with the cookies given.
func request(method, addr string, body url.Values, cookies ...*http.Cookie) *http.Request {
	r := httptest.NewRequest(method, "https://desk.example/", strings.NewReader(body.Encode()))
	if body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.RemoteAddr = addr
	for _, c := range cookies {
		r.AddCookie(c)
	}
	return r
}

// login logs name in from addr and returns the session cookie.
func login(t *testing.T, s *Sessions, addr, name, password string) (*http.Cookie, *Session, error) {
	t.Helper()
	w := httptest.NewRecorder()
	_, sess, err := s.Login(w, request("POST", addr, nil), name, password)
	if err != nil {
		return nil, nil, err
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies", len(cookies))
	}
	return cookies[0], sess, nil
}

// TestSessionAcrossReplicas: a login on one replica is a session on
// another, with the cookie's attributes as the design says and the same
// CSRF token; a logout on the second ends it on the first; the session
// token is not what the bucket is keyed by.
func TestSessionAcrossReplicas(t *testing.T) {
	ns, dir, clk := setup(t)
	a := openSessions(t, ns, dir, Options{Now: clk.Now})
	b := openSessions(t, ns, dir, Options{Now: clk.Now})

	cookie, sess, err := login(t, a, "192.0.2.7:5555", "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if cookie.Name != "__Host-tr_session" || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode ||
		cookie.Path != "/" || cookie.Domain != "" || len(cookie.Value) != 43 {
		t.Errorf("cookie %+v", cookie)
	}
	if sess.Agent != "alice" || sess.Addr != "192.0.2.7" || len(sess.CSRFToken()) != 43 || sess.CSRFToken() == cookie.Value {
		t.Errorf("session %+v", sess)
	}
	clk.Advance(10 * time.Minute)
	agent, sess2, err := b.Current(request("GET", "192.0.2.7:5556", nil, cookie))
	if err != nil || agent.Name != "alice" || !agent.CanSee("blue") || sess2.CSRFToken() != sess.CSRFToken() {
		t.Fatalf("Current on the second replica = %+v, %+v, %v", agent, sess2, err)
	}
	if _, err := b.sessions.Get(context.Background(), cookie.Value); err == nil {
		t.Error("the bucket holds the session token as a key")
	}

	w := httptest.NewRecorder()
	if err := b.Logout(w, request("POST", "192.0.2.7:5556", nil, cookie)); err != nil {
		t.Fatal(err)
	}
	if c := w.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 || c[0].Value != "" {
		t.Errorf("logout cookie %+v", c)
	}
	if _, _, err := a.Current(request("GET", "192.0.2.7:5555", nil, cookie)); !errors.Is(err, ErrNoSession) {
		t.Errorf("Current after logout = %v, want ErrNoSession", err)
	}
}

// TestSessionIdle: a session used within the idle timeout goes on (its
// use is written, so it counts on every replica); one left idle ends; so
// does one past its maximum age, and one whose agent is disabled.
func TestSessionIdle(t *testing.T) {
	ns, dir, clk := setup(t)
	opts := Options{Now: clk.Now, IdleTimeout: 30 * time.Minute, MaxAge: 2 * time.Hour}
	a := openSessions(t, ns, dir, opts)
	b := openSessions(t, ns, dir, opts)
	cookie, _, err := login(t, a, "192.0.2.7:5555", "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // 75 minutes in all, never 30 idle
		clk.Advance(25 * time.Minute)
		if _, _, err := []*Sessions{a, b}[i%2].Current(request("GET", "192.0.2.7:1", nil, cookie)); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	clk.Advance(30 * time.Minute)
	if _, _, err := b.Current(request("GET", "192.0.2.7:1", nil, cookie)); !errors.Is(err, ErrNoSession) {
		t.Errorf("after 30 idle minutes: %v, want ErrNoSession", err)
	}

	cookie, _, err = login(t, a, "192.0.2.7:5555", "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		clk.Advance(25 * time.Minute)
		_, _, err = a.Current(request("GET", "192.0.2.7:1", nil, cookie))
	}
	if !errors.Is(err, ErrNoSession) {
		t.Errorf("after 125 minutes in use: %v, want ErrNoSession (max age 2 h)", err)
	}

	cookie, _, err = login(t, a, "192.0.2.7:5555", "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(dir.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Disable("alice"); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if err := dir.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Current(request("GET", "192.0.2.7:1", nil, cookie)); !errors.Is(err, ErrNoSession) {
		t.Errorf("disabled agent's session: %v, want ErrNoSession", err)
	}
}

// TestSessionBadCookies: cookies that are not a live session's are
// refused with ErrNoSession, and the error does not hold them.
func TestSessionBadCookies(t *testing.T) {
	ns, dir, clk := setup(t)
	s := openSessions(t, ns, dir, Options{Now: clk.Now})
	for _, v := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 42) + "=", "../../etc", strings.Repeat("A", 4000)} {
		_, _, err := s.Current(request("GET", "192.0.2.7:1", nil, &http.Cookie{Name: CookieName, Value: v}))
		if !errors.Is(err, ErrNoSession) || (v != "" && strings.Contains(err.Error(), v)) {
			t.Errorf("cookie %.20q: %v", v, err)
		}
	}
	if _, _, err := s.Current(request("GET", "192.0.2.7:1", nil)); !errors.Is(err, ErrNoSession) {
		t.Errorf("no cookie: %v", err)
	}
}

// TestCSRF: a state change needs the session's token, in the header or
// the form; reads do not.
func TestCSRF(t *testing.T) {
	ns, dir, clk := setup(t)
	s := openSessions(t, ns, dir, Options{Now: clk.Now})
	_, sess, err := login(t, s, "192.0.2.7:5555", "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := login(t, s, "192.0.2.7:5555", "sam", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	withHeader := func(v string) *http.Request {
		r := request("POST", "192.0.2.7:1", nil)
		r.Header.Set(CSRFHeader, v)
		return r
	}
	for _, tt := range []struct {
		name string
		r    *http.Request
		sess *Session
		want error
	}{
		{"GET", request("GET", "192.0.2.7:1", nil), sess, nil},
		{"POST without", request("POST", "192.0.2.7:1", url.Values{"note": {"x"}}), sess, ErrCSRF},
		{"POST form", request("POST", "192.0.2.7:1", url.Values{CSRFField: {sess.CSRFToken()}}), sess, nil},
		{"POST header", withHeader(sess.CSRFToken()), sess, nil},
		{"POST wrong", withHeader(sess.CSRFToken()[:42] + "x"), sess, ErrCSRF},
		{"POST another session's", withHeader(other.CSRFToken()), sess, ErrCSRF},
		{"DELETE without", request("DELETE", "192.0.2.7:1", nil), sess, ErrCSRF},
		{"no session", withHeader(""), nil, ErrCSRF},
	} {
		if err := s.CheckCSRF(tt.r, tt.sess); err != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestLockout: five failures lock a name out, whether or not it is an
// agent, with the one answer; even the right password is then refused
// until the lockout ends; a second lockout lasts twice as long; many
// failures from one address lock the address out for every name.
func TestLockout(t *testing.T) {
	ns, dir, clk := setup(t)
	s := openSessions(t, ns, dir, Options{Now: clk.Now, Throttle: Throttle{AgentFailures: 3, AddrFailures: 8, Window: time.Hour, Lockout: 15 * time.Minute}})
	const addr = "192.0.2.7:5555"
	for _, name := range []string{"alice", "mallory"} {
		for i := range 3 {
			if _, _, err := login(t, s, addr, name, "wrong password!"); err != ErrBadCredentials {
				t.Fatalf("%s failure %d: %v, want ErrBadCredentials", name, i, err)
			}
		}
		_, _, err := login(t, s, addr, name, alicePassword)
		var te *ThrottledError
		if !errors.As(err, &te) || !te.Until.Equal(clk.Now().Add(15*time.Minute)) || !errors.Is(err, ErrThrottled) {
			t.Fatalf("%s locked out: %v", name, err)
		}
		if strings.Contains(err.Error(), name) {
			t.Errorf("error %q names the agent", err)
		}
	}
	clk.Advance(15 * time.Minute)
	if _, _, err := login(t, s, addr, "alice", alicePassword); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}

	// The address has 6 failures; two more lock it, for sam too.
	for range 2 {
		if _, _, err := login(t, s, addr, "nobody", "wrong password!"); err != ErrBadCredentials {
			t.Fatal(err)
		}
	}
	if _, _, err := login(t, s, addr, "sam", alicePassword); !errors.Is(err, ErrThrottled) {
		t.Errorf("sam from a locked address: %v", err)
	}
	if _, _, err := login(t, s, "192.0.2.8:5555", "sam", alicePassword); err != nil {
		t.Errorf("sam from another address: %v", err)
	}

	// mallory's second lockout: 30 minutes.
	clk.Advance(20 * time.Minute)
	for range 3 {
		login(t, s, "198.51.100.1:1", "mallory", "wrong password!")
	}
	clk.Advance(29 * time.Minute)
	if _, _, err := login(t, s, "198.51.100.2:1", "mallory", "x"); !errors.Is(err, ErrThrottled) {
		t.Errorf("mallory 29 minutes into a second lockout: %v", err)
	}
	clk.Advance(time.Minute)
	if _, _, err := login(t, s, "198.51.100.2:1", "mallory", "x"); err != ErrBadCredentials {
		t.Errorf("mallory after a second lockout: %v", err)
	}
}

// TestTrustedProxy: the user header counts only from a trusted proxy,
// and only for an enabled agent; such a user gets a session with a CSRF
// token; X-Forwarded-For names the client only through a trusted proxy.
func TestTrustedProxy(t *testing.T) {
	ns, dir, clk := setup(t)
	s := openSessions(t, ns, dir, Options{Now: clk.Now, TrustedProxies: []string{"10.1.0.0/16", "192.0.2.9"}, UserHeader: "X-Forwarded-User"})
	from := func(addr, user, xff string) *http.Request {
		r := request("GET", addr, nil)
		r.Header.Set("X-Forwarded-User", user)
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		return r
	}
	if _, _, err := s.Current(from("192.0.2.7:1", "alice", "")); !errors.Is(err, ErrNoSession) {
		t.Errorf("header from an untrusted address: %v, want ErrNoSession", err)
	}
	a, sess, err := s.Current(from("10.1.2.3:1", "alice", ""))
	if err != nil || a.Name != "alice" || !sess.Proxy || sess.CSRFToken() == "" {
		t.Fatalf("header from a trusted proxy: %+v, %+v, %v", a, sess, err)
	}
	_, sess2, err := s.Current(from("[::ffff:192.0.2.9]:1", "Alice", ""))
	if err != nil || sess2.CSRFToken() != sess.CSRFToken() {
		t.Errorf("second request: %+v, %v; want the same session", sess2, err)
	}
	for _, user := range []string{"mallory", "off"} {
		if _, _, err := s.Current(from("10.1.2.3:1", user, "")); !errors.Is(err, ErrUnknownAgent) {
			t.Errorf("proxy user %s: %v, want ErrUnknownAgent", user, err)
		}
	}
	for _, tt := range []struct{ remote, xff, want string }{
		{"192.0.2.7:1", "203.0.113.5", "192.0.2.7"},
		{"10.1.2.3:1", "203.0.113.5", "203.0.113.5"},
		{"10.1.2.3:1", "203.0.113.5, 198.51.100.4, 10.1.9.9", "198.51.100.4"},
		{"10.1.2.3:1", "", "10.1.2.3"},
		{"10.1.2.3:1", "junk", "10.1.2.3"},
	} {
		if got := s.ClientAddr(from(tt.remote, "", tt.xff)); got != tt.want {
			t.Errorf("ClientAddr(%s, %q) = %s, want %s", tt.remote, tt.xff, got, tt.want)
		}
	}
	if _, err := OpenSessions(context.Background(), nil, dir, Options{TrustedProxies: []string{"10.0.0.0/33"}}); err == nil {
		t.Error("a bad CIDR was accepted")
	}
}

// TestInsecureCookie: without Secure, the cookie loses its __Host- name,
// and logins are refused from anywhere but loopback.
func TestInsecureCookie(t *testing.T) {
	ns, dir, clk := setup(t)
	s := openSessions(t, ns, dir, Options{Now: clk.Now, InsecureCookie: true})
	if _, _, err := login(t, s, "192.0.2.7:1", "alice", alicePassword); !errors.Is(err, ErrInsecureCookie) {
		t.Errorf("from 192.0.2.7: %v, want ErrInsecureCookie", err)
	}
	cookie, _, err := login(t, s, "[::1]:1", "alice", alicePassword)
	if err != nil || cookie.Name != InsecureCookieName || cookie.Secure || !cookie.HttpOnly {
		t.Fatalf("from ::1: %+v, %v", cookie, err)
	}
	if _, _, err := s.Current(request("GET", "127.0.0.1:1", nil, cookie)); err != nil {
		t.Errorf("Current: %v", err)
	}
}
