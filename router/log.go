package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// The times of log lines, to the millisecond: many events of one mail
// fall within a second.
const (
	jsonTimeFormat    = "2006-01-02T15:04:05.000Z07:00" // RFC 3339 with milliseconds
	consoleTimeFormat = "15:04:05.000"
)

// NewLogger makes the service's logger: JSON, or readable console lines
// when the output is a terminal (format auto). Console lines are coloured
// only on a terminal, so that a file, a pipe or the journal gets plain
// text.
func NewLogger(c config.Log, w io.Writer) (zerolog.Logger, error) {
	level := zerolog.InfoLevel
	if c.Level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(c.Level))
		if err != nil {
			return zerolog.Logger{}, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Level)
		}
		level = l
	}
	f, ok := w.(*os.File)
	tty := ok && isatty.IsTerminal(f.Fd())
	out := w
	switch c.Format {
	case "", "auto":
		if tty {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: consoleTimeFormat}
		}
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: consoleTimeFormat, NoColor: !tty}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("log.format: %q is not auto, json or console", c.Format)
	}
	return zerolog.New(out).Hook(timestamp{}).Level(level), nil
}

// timestamp adds the time to each line as zerolog's Timestamp does, but
// with milliseconds, without setting zerolog's process-wide
// TimeFieldFormat. The console writer parses it back (Go's time parsing
// takes the fraction) and prints consoleTimeFormat.
type timestamp struct{}

// Run implements zerolog.Hook.
func (timestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(jsonTimeFormat))
}

// SlogLogger is log as a *slog.Logger, for the parts that log through the
// standard library (the desk): their lines come out as the service's own,
// with its format, level, time and fields.
func SlogLogger(log zerolog.Logger) *slog.Logger {
	return slog.New(untimed{zerolog.NewSlogHandler(log)})
}

// untimed drops a record's time, which the service's logger adds itself
// (timestamp), so that a line has one.
type untimed struct{ slog.Handler }

// Handle implements slog.Handler.
func (h untimed) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h untimed) WithAttrs(attrs []slog.Attr) slog.Handler {
	return untimed{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h untimed) WithGroup(name string) slog.Handler { return untimed{h.Handler.WithGroup(name)} }
