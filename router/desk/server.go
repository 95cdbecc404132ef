package desk

import (
	"cmp"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the Content-Security-Policy of every response: scripts, styles
// and images from the desk only, no inline script or style, no frames,
// forms posting only to the desk. connect-src lets the board's script
// read the live counts (server-sent events).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// CSRFField is the form field that carries the session's CSRF token (or
// the X-CSRF-Token header does), as the agents package reads it.
const CSRFField = "csrf_token"

// Options are the desk's settings (the desk section of the configuration).
type Options struct {
	// SLAAmber and SLARed are the ages of a queue's oldest waiting ticket
	// past which the board shows it amber and red; 1h and 4h when zero.
	SLAAmber, SLARed time.Duration
	// EscalationQueue is the supervisors' queue; "escalated" when empty.
	EscalationQueue string
	// EventInterval is how often the board's live counts are sent; 5s
	// when zero.
	EventInterval time.Duration
	// Replies lets agents answer customers; nil: no replies.
	Replies *Replies
	// Logger logs failures of the store; slog.Default() when nil. It
	// never sees a session id or a password.
	Logger *slog.Logger
	// Now stands for time.Now in tests.
	Now func() time.Time
}

// Outcomes are the outcomes a ticket may be resolved with.
var outcomes = []string{"reset-done", "referred", "self-service-sent", "refused", "spam", "duplicate", "other"}

// Server is the desk's HTTP handler.
type Server struct {
	store   Store
	auth    Auth
	opts    Options
	pages   map[string]*template.Template
	mux     *http.ServeMux
	h       http.Handler
	metrics *metrics
}

// New returns the desk's handler over a store and an auth.
func New(store Store, auth Auth, opts Options) (*Server, error) {
	opts.SLAAmber = cmp.Or(opts.SLAAmber, time.Hour)
	opts.SLARed = cmp.Or(opts.SLARed, 4*time.Hour)
	opts.EscalationQueue = cmp.Or(opts.EscalationQueue, "escalated")
	opts.EventInterval = cmp.Or(opts.EventInterval, 5*time.Second)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{store: store, auth: auth, opts: opts, mux: http.NewServeMux(), metrics: newMetrics()}
	if err := s.parseTemplates(); err != nil {
		return nil, fmt.Errorf("desk: %w", err)
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("desk: %w", err)
	}
	m := s.mux
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.agent(s.logout))
	m.HandleFunc("GET /{$}", s.agent(s.board))
	m.HandleFunc("GET /events", s.agent(s.events))
	m.HandleFunc("POST /take/{queue}", s.agent(s.take))
	m.HandleFunc("GET /search", s.agent(s.search))
	m.HandleFunc("GET /t/{id}", s.agent(s.ticketPage))
	m.HandleFunc("GET /t/{id}/raw", s.agent(s.raw))
	m.HandleFunc("GET /t/{id}/attachment/{n}", s.agent(s.attachment))
	m.HandleFunc("POST /t/{id}/{action}", s.agent(s.act))
	s.health(m)
	s.h = http.NewCrossOriginProtection().Handler(m)
	return s, nil
}

// ServeHTTP serves the desk, with the security headers on every response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	s.metrics.observe(s.h, w, r)
}

// request is what a handler of a signed-in agent gets.
type request struct {
	agent   *Agent
	session *Session
	actor   Actor
}

// agent wraps a handler for signed-in agents: without a session a page
// redirects to the login and anything else is 401; a state change
// without the session's CSRF token is 403.
func (s *Server) agent(h func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, sess, err := s.auth.Current(r)
		if err != nil || a == nil || sess == nil {
			if r.Method == http.MethodGet && r.URL.Path != "/events" {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !s.csrfOK(r, sess) {
				http.Error(w, "missing or wrong CSRF token: reload the page", http.StatusForbidden)
				return
			}
		}
		h(w, r, &request{agent: a, session: sess, actor: Actor{Agent: a.Name, Addr: s.auth.ClientAddr(r), Supervisor: a.Supervisor}})
	}
}

// csrfOK checks the form's (or the X-CSRF-Token header's) token against
// the session's, then lets the Auth check it too.
func (s *Server) csrfOK(r *http.Request, sess *Session) bool {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
		tok = r.PostFormValue(CSRFField)
	}
	if tok == "" || sess.CSRF == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRF)) != 1 {
		return false
	}
	return s.auth.CheckCSRF(r, sess) == nil
}

// fail answers a store error with its status, logging the unexpected.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "No such ticket.")
	case errors.Is(err, ErrNotOwner):
		s.errorPage(w, r, http.StatusForbidden, "You do not own this ticket.")
	case errors.Is(err, ErrConflict):
		s.errorPage(w, r, http.StatusConflict, "The ticket changed meanwhile: reload it.")
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrWithheld):
		s.errorPage(w, r, http.StatusBadRequest, "The desk cannot do that with this ticket.")
	case errors.Is(err, ErrNoTicket):
		s.errorPage(w, r, http.StatusNotFound, "Nothing is waiting in that queue.")
	default:
		s.opts.Logger.Error("desk: "+op, "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "The desk could not do that; try again.")
	}
}
