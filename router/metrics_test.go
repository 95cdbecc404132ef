package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// get fetches path from h: the status and the body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

// TestBuildInfoMetric: /metrics says which build answers, as
// ticketrouter_build_info 1 with the version, commit and Go version.
func TestBuildInfoMetric(t *testing.T) {
	b := Build()
	want := fmt.Sprintf("ticketrouter_build_info{goversion=%q,revision=%q,version=%q} 1\n", b.GoVersion, b.Revision, b.Version)
	code, body := get(t, newMetrics().handler(func() []string { return nil }), "/metrics")
	if code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("/metrics: status %d, want 200 and %q in:\n%s", code, want, body)
	}
}

// TestProbePortServesNoProfiles: the probe and metrics listener, which
// Kubernetes binds to every interface, serves no Go profiles: they are
// on the opt-in debug listener only.
func TestProbePortServesNoProfiles(t *testing.T) {
	h := newMetrics().handler(func() []string { return nil })
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/heap", "/debug/pprof/trace"} {
		if code, body := get(t, h, path); code != http.StatusNotFound {
			t.Errorf("%s on the probe port: status %d, want 404; body %.200q", path, code, body)
		}
	}
}

// TestDebugHandler: the debug listener serves Go's profiles and nothing
// of the probe port.
func TestDebugHandler(t *testing.T) {
	h := debugHandler()
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/debug/pprof/", 200, "goroutine"},
		{"/debug/pprof/goroutine?debug=1", 200, "goroutine profile:"},
		{"/debug/pprof/cmdline", 200, ""},
		{"/metrics", 404, ""},
		{"/readyz", 404, ""},
	} {
		if code, body := get(t, h, c.path); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: status %d, want %d and a body with %q; got %.200q", c.path, code, c.code, c.want, body)
		}
	}
}
