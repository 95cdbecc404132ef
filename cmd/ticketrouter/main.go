// Command ticketrouter turns a certificate authority's support mailbox into
// routed tickets. Subcommands:
//
//	ticketrouter demo [--keep]
//	ticketrouter run --config FILE
//	ticketrouter route [--config FILE] [--accounts FILE] [--explain] MSG.eml...
//	ticketrouter config check FILE
//	ticketrouter queue list | next COLOUR [--ack|--nak|--term] [--json]
//
// demo runs the whole service on sample mails with nothing to set up; run
// is the service; route is a dry run of the policy on saved mails; config
// check validates a configuration; queue is what agents use.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the work failed, or part of it
	exitUsage = 2 // the command line is wrong
)

const usage = `usage: ticketrouter <command> [flags]

commands:
  demo     route sample mails through the whole service on this machine, no setup
  run      watch the mailbox and publish tickets (the service)
  route    route saved mails through the policy and print their tickets (a dry run)
  config   check a configuration file: ticketrouter config check FILE
  queue    list the agents' queues, or claim the next ticket of one (agents)

Run 'ticketrouter <command> -h' for a command's flags.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "route":
		return route(ctx, args[1:], stdin, stdout, stderr)
	case "demo":
		return demoCmd(ctx, args[1:], stdout, stderr)
	case "run":
		return serve(ctx, args[1:], stdout, stderr)
	case "config":
		return configCmd(args[1:], stdout, stderr)
	case "queue":
		return queueCmd(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "ticketrouter: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}
