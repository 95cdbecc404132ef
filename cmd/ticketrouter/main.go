// Command ticketrouter turns a certificate authority's support mailbox into
// routed tickets. Subcommands:
//
//	ticketrouter demo [--keep]
//	ticketrouter run --config FILE
//	ticketrouter route [--config FILE] [--accounts FILE] [--explain] MSG.eml...
//	ticketrouter config check FILE
//	ticketrouter queue list | next QUEUE [--ack|--nak|--term] [--json] | ack|nak|term|extend CLAIM-ID
//	ticketrouter health [--url URL | --config FILE]
//	ticketrouter desk --config FILE
//	ticketrouter version
//	ticketrouter completion bash|zsh|fish|powershell
//
// demo runs the whole service on sample mails with nothing to set up; run
// is the service; route is a dry run of the policy on saved mails; config
// check validates a configuration; queue is what agents use; health asks
// a running service whether it is ready; desk serves the agents' web desk.
// This package holds flags, help and printing only: the work is done by
// package router and those below it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router"
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

// exitCode is the error of a command that has already said what went
// wrong: the process exits with it.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// usageError is a mistake in the command line: it is printed with a
// pointer to the command's help, and the process exits with exitUsage.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// usagef returns a usageError.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd := root
	_, _, err := root.Find(args)
	if err != nil {
		err = usageError{err}
	} else {
		cmd, err = root.ExecuteContextC(ctx)
	}
	var code exitCode
	var usage usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), usage.error, cmd.CommandPath())
		return exitUsage
	}
	printError(stderr, err)
	return exitError
}

// newRootCmd returns the ticketrouter command with its subcommands.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ticketrouter",
		Short: "Route a certificate authority's support mail to the agents' queues",
		Long: `ticketrouter turns a certificate authority's support mailbox into routed work:
it reads the mailbox over IMAP, works out which customer account each mail is
about and which channel (colour) the customer came through, checks the sender,
and publishes a ticket to that colour's queue on NATS JetStream.`,
		Version:       router.Build().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("ticketrouter {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newDemoCmd(), newRunCmd(), newRouteCmd(), newConfigCmd(), newQueueCmd(), newHealthCmd(), newAgentCmd(), newVersionCmd())
	root.AddCommand(newDeskCmd())
	return group(root)
}

// group makes cmd a command that only holds subcommands: run without one,
// or with one it does not know, it is a usage error.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		if len(args) == 0 {
			return usagef("missing command: want one of %s", strings.Join(names, ", "))
		}
		return usagef("unknown command %q: want one of %s", args[0], strings.Join(names, ", "))
	}
	return cmd
}

// args wraps a positional-argument check so that its error is a usage
// error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// newVersionCmd is 'ticketrouter version'.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  args(cobra.NoArgs),
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "ticketrouter %s\n", router.Build())
		},
	}
}

// printError writes err with the command's name, one line per problem.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "ticketrouter: %s\n", line)
	}
}
