package agents_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
)

// Example shows how a web server uses the package: the directory
// reloaded as its file changes, a login handler, and a middleware that
// finds the agent of every request and refuses state changes without
// the CSRF token.
func Example() {
	ctx := context.Background()
	var js jetstream.JetStream // connected to NATS, as router/broker does

	dir, err := agents.LoadDirectory("/etc/ticketrouter/agents.yaml")
	if err != nil {
		log.Fatal(err)
	}
	go dir.Watch(ctx, 2*time.Second, func(err error) { log.Print(err) })
	sessions, err := agents.OpenSessions(ctx, js, dir, agents.Options{
		IdleTimeout:    30 * time.Minute,
		TrustedProxies: []string{"10.0.0.0/8"},
		UserHeader:     "X-Forwarded-User",
	})
	if err != nil {
		log.Fatal(err)
	}

	http.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		_, _, err := sessions.Login(w, r, r.PostFormValue("name"), r.PostFormValue("password"))
		var throttled *agents.ThrottledError
		switch {
		case errors.As(err, &throttled):
			w.Header().Set("Retry-After", throttled.Until.UTC().Format(http.TimeFormat))
			http.Error(w, err.Error(), http.StatusTooManyRequests)
		case errors.Is(err, agents.ErrBadCredentials):
			http.Error(w, err.Error(), http.StatusUnauthorized) // the same for every name
		case err != nil:
			http.Error(w, "login failed", http.StatusInternalServerError) // log err: it holds no secret
		default:
			http.Redirect(w, r, "/", http.StatusSeeOther)
		}
	})
	requireAgent := func(next func(http.ResponseWriter, *http.Request, *agents.Agent, *agents.Session)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			a, s, err := sessions.Current(r)
			switch {
			case errors.Is(err, agents.ErrNoSession):
				http.Redirect(w, r, "/login", http.StatusSeeOther)
			case errors.Is(err, agents.ErrUnknownAgent):
				http.Error(w, err.Error(), http.StatusForbidden)
			case err != nil:
				http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			case sessions.CheckCSRF(r, s) != nil:
				http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
			default:
				next(w, r, a, s)
			}
		}
	}
	http.HandleFunc("/queue/{q}", requireAgent(func(w http.ResponseWriter, r *http.Request, a *agents.Agent, s *agents.Session) {
		if !a.CanSee(r.PathValue("q")) {
			http.Error(w, "not your queue", http.StatusForbidden)
			return
		}
		// … render, with s.CSRFToken() in a hidden field named agents.CSRFField
	}))
}
