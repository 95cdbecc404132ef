package router

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProbe: a 200 from /readyz is ready; anything else is an error that
// says why, with the service's reasons on one line.
func TestProbe(t *testing.T) {
	answer := func(code int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/readyz"
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, c := range []struct {
		name, url, want string
	}{
		{"ready", answer(200, "ready\n"), ""},
		{"not ready", answer(503, "JetStream not provisioned\nNATS not connected: nats: no servers available for connection\n"),
			"503 Service Unavailable: JetStream not provisioned; NATS not connected: nats: no servers available for connection"},
		{"not found", answer(404, "404 page not found\n"), "404 Not Found: 404 page not found"},
		{"long answer", answer(503, strings.Repeat("x", 10000)), "503 Service Unavailable: " + strings.Repeat("x", 1000) + "..."},
		{"nobody listening", closed.URL + "/readyz", "connection refused"},
		{"no URL", "localhost:8080", "unsupported protocol scheme"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Probe(context.Background(), c.url)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("Probe: %v, want nil", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n")):
				t.Errorf("Probe: %v, want one line with %q", err, c.want)
			}
		})
	}
}

// TestProbeTimeout: a service that does not answer is not ready once the
// context ends.
func TestProbeTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Probe(ctx, srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("Probe: %v, want a deadline error", err)
	}
}

// TestReadyURL: the /readyz URL of a listen address; an address on every
// interface is asked on loopback.
func TestReadyURL(t *testing.T) {
	for _, c := range []struct{ listen, want, err string }{
		{"127.0.0.1:8080", "http://127.0.0.1:8080/readyz", ""},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/readyz", ""},
		{":9090", "http://127.0.0.1:9090/readyz", ""},
		{"[::]:8080", "http://[::1]:8080/readyz", ""},
		{"[::1]:8080", "http://[::1]:8080/readyz", ""},
		{"10.0.0.7:8080", "http://10.0.0.7:8080/readyz", ""},
		{"localhost:8080", "http://localhost:8080/readyz", ""},
		{"off", "", "http.listen is off: the service serves no /readyz"},
		{"8080", "", `http.listen: "8080" is not host:port`},
	} {
		got, err := ReadyURL(c.listen)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("ReadyURL(%q) = %q, %v; want %q, %q", c.listen, got, err, c.want, c.err)
		}
	}
}
