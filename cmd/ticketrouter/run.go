package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// serve implements 'ticketrouter run': watch the mailbox, decide each
// mail, publish its ticket, until SIGTERM; then drain and exit 0.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "the configuration `FILE` (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ticketrouter run --config FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.LoadRun(*configPath)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	log, err := router.NewLogger(cfg.Log, stdout)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if err := router.NewService(cfg, log, router.Options{LimitMemory: true}).Run(ctx); err != nil {
		log.Error().Err(err).Msg("stopped")
		return exitError
	}
	log.Info().Msg("stopped cleanly")
	return exitOK
}
