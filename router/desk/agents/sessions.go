package agents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cookie names. Browsers accept a __Host- cookie only when it is Secure,
// has Path=/ and no Domain, so that a sibling domain cannot set or
// shadow it; the insecure name is for plain-http loopback tests only.
const (
	CookieName         = "__Host-tr_session"
	InsecureCookieName = "tr_session"
)

// The CSRF token travels in this form field or this header.
const (
	CSRFField  = "csrf_token"
	CSRFHeader = "X-CSRF-Token"
)

// Errors of Current and CheckCSRF. None of them holds a token.
var (
	// ErrNoSession: the request has no session, or one that has expired,
	// ended, or belongs to an agent now disabled or removed.
	ErrNoSession = errors.New("not logged in")
	// ErrUnknownAgent: a trusted proxy names a user who is not an
	// enabled agent.
	ErrUnknownAgent = errors.New("the proxy's user is not an enabled agent")
	// ErrCSRF: a state-changing request without the session's CSRF token.
	ErrCSRF = errors.New("missing or wrong CSRF token")
	// ErrInsecureCookie: Options.InsecureCookie is set and the request
	// did not come from a loopback address.
	ErrInsecureCookie = errors.New("insecure session cookies are for plain-http loopback tests only")
)

// Options configure Sessions. The zero value is usable: the defaults are
// noted on each field.
type Options struct {
	// SessionsBucket and LoginsBucket name the key-value buckets;
	// "DESK-sessions" and "DESK-logins" by default.
	SessionsBucket, LoginsBucket string
	// Replicas of the buckets; 1 by default.
	Replicas int
	// IdleTimeout ends a session not used for that long; 30 min by
	// default. It is also the sessions bucket's TTL. A session's last use
	// is written at most every IdleTimeout/10 (and at most every minute),
	// so it may end up to that much early.
	IdleTimeout time.Duration
	// MaxAge ends a session that long after its login, used or not;
	// 12 h by default.
	MaxAge time.Duration
	// Throttle throttles logins.
	Throttle Throttle
	// TrustedProxies are the addresses (CIDRs, or single addresses) of
	// reverse proxies whose UserHeader names the agent, and whose
	// X-Forwarded-For gives the client's address. From any other address
	// both headers are ignored.
	TrustedProxies []string
	// UserHeader is the header in which a trusted proxy names the agent,
	// e.g. X-Forwarded-User; none when empty.
	UserHeader string
	// InsecureCookie drops the cookie's Secure attribute (and so its
	// __Host- prefix), for plain-http tests on loopback: logins from any
	// other address are then refused.
	InsecureCookie bool
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.SessionsBucket == "" {
		o.SessionsBucket = "DESK-sessions"
	}
	if o.LoginsBucket == "" {
		o.LoginsBucket = "DESK-logins"
	}
	orDefault(&o.Replicas, 1)
	orDefault(&o.IdleTimeout, 30*time.Minute)
	orDefault(&o.MaxAge, 12*time.Hour)
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Throttle = o.Throttle.withDefaults()
	return o
}

// Sessions are the desk's logins and sessions, kept in JetStream so that
// every desk replica serves every agent. It is safe for concurrent use.
type Sessions struct {
	dir      *Directory
	sessions jetstream.KeyValue
	logins   jetstream.KeyValue
	opts     Options
	throttle Throttle
	proxies  proxies
	touch    time.Duration
}

// Session is an agent's login. It holds neither the session token nor, in
// an exported field, the CSRF token, so that logging it gives nothing
// away.
type Session struct {
	Agent    string    // the agent's name
	Created  time.Time // the login
	LastSeen time.Time // the last use, as last written
	Addr     string    // the client's address at login
	Proxy    bool      // the session of a trusted proxy's user, one per agent
	csrf     string
}

// CSRFToken is the session's CSRF synchronizer token, to put in every
// form (field CSRFField) or send in the CSRFHeader header.
func (s *Session) CSRFToken() string { return s.csrf }

// record is a session in the bucket.
type record struct {
	Agent    string    `json:"agent"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Addr     string    `json:"addr,omitempty"`
	Proxy    bool      `json:"proxy,omitempty"`
	CSRF     string    `json:"csrf"`
}

// OpenSessions opens the sessions and logins buckets on js, creating
// them, or bringing their TTL and replicas to opts, when needed. Agents
// come from dir.
func OpenSessions(ctx context.Context, js jetstream.JetStream, dir *Directory, opts Options) (*Sessions, error) {
	opts = opts.withDefaults()
	s := &Sessions{dir: dir, opts: opts, throttle: opts.Throttle, touch: min(opts.IdleTimeout/10, time.Minute)}
	var err error
	if s.proxies, err = parseProxies(opts.TrustedProxies); err != nil {
		return nil, err
	}
	if s.sessions, err = bucket(ctx, js, opts.SessionsBucket, "desk sessions, by SHA-256 of their token", opts.IdleTimeout, opts.Replicas); err != nil {
		return nil, err
	}
	if s.logins, err = bucket(ctx, js, opts.LoginsBucket, "desk login failures, per agent and address", opts.Throttle.MaxLockout+opts.Throttle.Window, opts.Replicas); err != nil {
		return nil, err
	}
	return s, nil
}

// bucket opens key-value bucket name with ttl and replicas, creating it
// or updating it when needed.
func bucket(ctx context.Context, js jetstream.JetStream, name, desc string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{Bucket: name, Description: desc, TTL: ttl, History: 1, Storage: jetstream.FileStorage, Replicas: replicas}
	kv, err := js.KeyValue(ctx, name)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) { // another replica made it
			kv, err = js.KeyValue(ctx, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", name, err)
	}
	if b, ok := st.(*jetstream.KeyValueBucketStatus); ok && b.TTL() == ttl && b.StreamInfo().Config.Replicas == replicas {
		return kv, nil
	}
	if kv, err = js.UpdateKeyValue(ctx, cfg); err != nil {
		return nil, fmt.Errorf("update bucket %s: %w", name, err)
	}
	return kv, nil
}

// cookieName is the session cookie's name.
func (s *Sessions) cookieName() string {
	if s.opts.InsecureCookie {
		return InsecureCookieName
	}
	return CookieName
}

// Login checks name and password, subject to throttling, and on success
// starts a session: it sets the session cookie on w and ends the session
// the request came with, if any. A failure is ErrBadCredentials, a
// *ThrottledError, or an error of the store; it is the same for names
// that are not agents.
func (s *Sessions) Login(w http.ResponseWriter, r *http.Request, name, password string) (*Agent, *Session, error) {
	ctx := r.Context()
	addr, err := s.remote(r)
	if err != nil {
		return nil, nil, err
	}
	if s.opts.InsecureCookie && !addr.IsLoopback() {
		return nil, nil, ErrInsecureCookie
	}
	client := s.proxies.client(addr, r.Header)
	keys := []string{agentKey(name), addrKey(client)}
	now := s.opts.Now()
	until, err := s.lockedUntil(ctx, now, keys...)
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	if !until.IsZero() {
		return nil, nil, &ThrottledError{Until: until}
	}
	a, authErr := s.dir.Authenticate(ctx, name, password)
	if authErr != nil {
		for i, limit := range []int{s.throttle.AgentFailures, s.throttle.AddrFailures} {
			if err := s.fail(ctx, now, keys[i], limit); err != nil {
				return nil, nil, fmt.Errorf("login: %w", err)
			}
		}
		return nil, nil, authErr
	}
	if err := s.logins.Delete(ctx, keys[0]); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil, fmt.Errorf("login: clear failures: %w", err)
	}
	token, key, err := newToken()
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	csrf, _, err := newToken()
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	rec := record{Agent: a.Name, Created: now, LastSeen: now, Addr: client.String(), CSRF: csrf}
	if _, err := s.put(ctx, key, rec, 0); err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	s.end(ctx, r) // the session it came with, if any: no fixation
	http.SetCookie(w, s.cookie(token))
	return a, rec.session(), nil
}

// Current returns the agent and session of r: the agent a trusted proxy
// names in the user header, or else the session of r's cookie. A session
// whose idle time or age is past, or whose agent is now disabled or gone,
// is ended. The session's last use is written as Options.IdleTimeout
// says. Errors: ErrNoSession, ErrUnknownAgent, or an error of the store.
func (s *Sessions) Current(r *http.Request) (*Agent, *Session, error) {
	ctx := r.Context()
	if name, ok := s.proxyUser(r); ok {
		return s.proxySession(ctx, name)
	}
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return nil, nil, ErrNoSession
	}
	key, ok := tokenKey(c.Value)
	if !ok {
		return nil, nil, ErrNoSession
	}
	return s.load(ctx, key)
}

// load returns the agent and session stored under key, ending it when it
// is over and touching it when due.
func (s *Sessions) load(ctx context.Context, key string) (*Agent, *Session, error) {
	e, err := s.sessions.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, nil, ErrNoSession
	case err != nil:
		return nil, nil, fmt.Errorf("read session: %w", err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		s.sessions.Delete(ctx, key)
		return nil, nil, ErrNoSession
	}
	now := s.opts.Now()
	a, ok := s.dir.Lookup(rec.Agent)
	if !ok || a.Disabled || now.Sub(rec.LastSeen) >= s.opts.IdleTimeout || now.Sub(rec.Created) >= s.opts.MaxAge {
		s.sessions.Delete(ctx, key)
		return nil, nil, ErrNoSession
	}
	if now.Sub(rec.LastSeen) >= s.touch {
		rec.LastSeen = now
		// A conflict is another replica touching it at the same time.
		if _, err := s.put(ctx, key, rec, e.Revision()); err != nil && !conflict(err) {
			return nil, nil, fmt.Errorf("touch session: %w", err)
		}
	}
	return a, rec.session(), nil
}

// proxySession returns the session of agent name, authenticated by a
// trusted proxy: one per agent, made on first use, carrying the CSRF
// token of its forms.
func (s *Sessions) proxySession(ctx context.Context, name string) (*Agent, *Session, error) {
	a, ok := s.dir.Lookup(name)
	if !ok || a.Disabled {
		return nil, nil, ErrUnknownAgent
	}
	sum := sha256.Sum256([]byte(a.Name))
	key := "proxy." + hex.EncodeToString(sum[:])
	for range maxCASAttempts {
		current, sess, err := s.load(ctx, key)
		if !errors.Is(err, ErrNoSession) {
			return current, sess, err
		}
		csrf, _, err := newToken()
		if err != nil {
			return nil, nil, fmt.Errorf("proxy session: %w", err)
		}
		now := s.opts.Now()
		rec := record{Agent: a.Name, Created: now, LastSeen: now, Proxy: true, CSRF: csrf}
		_, err = s.put(ctx, key, rec, 0)
		switch {
		case err == nil:
			return a, rec.session(), nil
		case !conflict(err):
			return nil, nil, fmt.Errorf("proxy session: %w", err)
		}
	}
	return nil, nil, fmt.Errorf("proxy session: %d conflicting writes", maxCASAttempts)
}

// Logout ends r's session, if any, and clears its cookie on w. A trusted
// proxy's user stays logged in: the proxy decides.
func (s *Sessions) Logout(w http.ResponseWriter, r *http.Request) error {
	err := s.end(r.Context(), r)
	c := s.cookie("")
	c.MaxAge = -1
	http.SetCookie(w, c)
	return err
}

// end deletes the session of r's cookie.
func (s *Sessions) end(ctx context.Context, r *http.Request) error {
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return nil
	}
	key, ok := tokenKey(c.Value)
	if !ok {
		return nil
	}
	if err := s.sessions.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// CheckCSRF returns ErrCSRF when r changes state (any method but GET,
// HEAD, OPTIONS and TRACE) without sess's CSRF token in the CSRFHeader
// header or the CSRFField form field. Tokens are compared in constant
// time.
func (s *Sessions) CheckCSRF(r *http.Request, sess *Session) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return nil
	}
	if sess == nil || sess.csrf == "" {
		return ErrCSRF
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
		return ErrCSRF
	}
	return nil
}

// cookie is the session cookie carrying token.
func (s *Sessions) cookie(token string) *http.Cookie {
	return &http.Cookie{
		Name: s.cookieName(), Value: token, Path: "/",
		Secure: !s.opts.InsecureCookie, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	}
}

// put writes rec under key: a create when revision is 0, else an update
// of that revision.
func (s *Sessions) put(ctx context.Context, key string, rec record, revision uint64) (uint64, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	if revision == 0 {
		return s.sessions.Create(ctx, key, data)
	}
	return s.sessions.Update(ctx, key, data, revision)
}

func (rec record) session() *Session {
	return &Session{Agent: rec.Agent, Created: rec.Created, LastSeen: rec.LastSeen, Addr: rec.Addr, Proxy: rec.Proxy, csrf: rec.CSRF}
}

// tokenLen is the length of a token: 256 random bits.
const tokenLen = 32

// newToken returns a random token (unpadded base64url) and the bucket key
// of a session with that token.
func newToken() (token, key string, err error) {
	b := make([]byte, tokenLen)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	key, _ = tokenKey(token)
	return token, key, nil
}

// tokenKey returns the bucket key of a session token: the hex SHA-256 of
// its bytes. Anything that is not a token is refused.
func tokenKey(token string) (string, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != tokenLen {
		return "", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), true
}
