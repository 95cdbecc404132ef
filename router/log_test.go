package router

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/config"
)

// TestLoggerFormats: JSON lines carry RFC 3339 times with milliseconds;
// console lines start with the time of day with milliseconds and carry no
// colour codes when the output is not a terminal (a file, a pipe, a
// journal), whether chosen by auto or forced.
func TestLoggerFormats(t *testing.T) {
	jsonTime := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)
	consoleLine := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} INF accounts loaded accounts=9\n$`)
	file := func(t *testing.T) *os.File { // not a terminal
		f, err := os.Create(filepath.Join(t.TempDir(), "log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	for _, c := range []struct {
		name    string
		format  string
		file    bool // an *os.File rather than a buffer
		console bool // console lines, else JSON
	}{
		{"auto, file", "auto", true, false},
		{"default, file", "", true, false},
		{"json, buffer", "json", false, false},
		{"console, buffer", "console", false, true},
		{"console, file", "console", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			var w io.Writer = &buf
			var f *os.File
			if c.file {
				f = file(t)
				w = f
			}
			l, err := NewLogger(config.Log{Format: c.format}, w)
			if err != nil {
				t.Fatal(err)
			}
			l.Info().Int("accounts", 9).Msg("accounts loaded")
			out := buf.String()
			if c.file {
				raw, err := os.ReadFile(f.Name())
				if err != nil {
					t.Fatal(err)
				}
				out = string(raw)
			}
			if strings.Contains(out, "\x1b[") {
				t.Errorf("colour codes in output that is no terminal: %q", out)
			}
			if c.console {
				if !consoleLine.MatchString(out) {
					t.Errorf("console line %q, want %s", out, consoleLine)
				}
				return
			}
			var entry map[string]any
			if err := json.Unmarshal([]byte(out), &entry); err != nil {
				t.Fatalf("not one JSON line: %q: %v", out, err)
			}
			if ts, _ := entry["time"].(string); !jsonTime.MatchString(ts) {
				t.Errorf("time %q, want RFC 3339 with milliseconds; line %q", ts, out)
			}
			if entry["message"] != "accounts loaded" || entry["accounts"] != 9.0 || entry["level"] != "info" {
				t.Errorf("line %q", out)
			}
		})
	}
}

// TestSlogLogger: what the desk logs through slog comes out as the
// service's own JSON lines: one time (with milliseconds), the level, the
// message and each attribute as a field, and lines below the service's
// level dropped.
func TestSlogLogger(t *testing.T) {
	var buf bytes.Buffer
	zl, err := NewLogger(config.Log{Format: "json", Level: "info"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log := SlogLogger(zl.With().Str("component", "desk").Logger())
	log.Debug("not shown")
	log.With("agent", "alice").Warn("take next failed", "queue", "red", "status", 503)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want 1:\n%s", len(lines), buf.String())
	}
	if n := strings.Count(lines[0], `"time":`); n != 1 {
		t.Errorf("%d time fields, want 1: %s", n, lines[0])
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{"level": "warn", "message": "take next failed", "component": "desk", "agent": "alice", "queue": "red", "status": float64(503)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, lines[0])
		}
	}
	if tm, _ := got["time"].(string); !regexp.MustCompile(`\.\d{3}`).MatchString(tm) {
		t.Errorf("time %q has no milliseconds", tm)
	}
}
