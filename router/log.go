package router

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// NewLogger makes the service's logger: JSON, or readable console lines
// when the output is a terminal (format auto).
func NewLogger(c config.Log, w io.Writer) (zerolog.Logger, error) {
	level := zerolog.InfoLevel
	if c.Level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(c.Level))
		if err != nil {
			return zerolog.Logger{}, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Level)
		}
		level = l
	}
	out := w
	switch c.Format {
	case "", "auto":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("log.format: %q is not auto, json or console", c.Format)
	}
	return zerolog.New(out).With().Timestamp().Logger().Level(level), nil
}
