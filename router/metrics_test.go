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
