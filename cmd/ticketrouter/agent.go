package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
)

// newAgentCmd is 'ticketrouter agent': the desk's agents file.
func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Add agents to the desk's agents file, set their passwords, disable them",
		Long: `agent edits the desk's agents file (the desk's agents setting): it adds an
agent with its roles and colours, sets an agent's password, or disables an
agent. The password is read from the terminal without echo, or else from
the first line of standard input; never from a flag, where it would stay
in the shell's history and the process list. The file is written
atomically with mode 0600, keeping its comments; a running desk reloads it.`,
	}
	cmd.AddCommand(newAgentAddCmd(), newAgentPasswdCmd(), newAgentSetDisabledCmd(true), newAgentSetDisabledCmd(false))
	return group(cmd)
}

// agentFileFlag adds the required --file flag.
func agentFileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVar(file, "file", "", "the agents `FILE` (required)")
}

// openAgents opens the agents file, or says that --file is missing.
func openAgents(file string) (*agents.File, error) {
	if file == "" {
		return nil, usagef("--file FILE is required")
	}
	return agents.OpenFile(file)
}

// newAgentAddCmd is 'ticketrouter agent add'.
func newAgentAddCmd() *cobra.Command {
	var file, role, display string
	var colours []string
	cmd := &cobra.Command{
		Use:   "add NAME --file FILE --colours blue,red [--role agent|supervisor|admin] [--display NAME]",
		Short: "Add an agent, asking for its password",
		Long: `add adds agent NAME to the agents file, creating the file if need be, and
asks for its password (at least ` + fmt.Sprint(agents.MinPasswordLength) + ` characters). An agent works the queues
of its colours; a supervisor sees every queue, the escalated tickets and
reassigns; an admin is a supervisor who also administers the desk.
Colours: ` + strings.Join(broker.Queues(), ", ") + `.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			f, err := openAgents(file)
			if err != nil {
				return err
			}
			a := agents.Agent{Name: argv[0], Display: display, Roles: []string{role}, Colours: colours}
			if err := a.Check(); err != nil {
				return usageError{err}
			}
			if f.Has(a.Name) {
				return fmt.Errorf("%s already has agent %q: use 'ticketrouter agent passwd' to set its password", file, a.Name)
			}
			pw, err := agents.ReadPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), a.Name)
			if err != nil {
				return err
			}
			if err := f.Add(a, pw); err != nil {
				return err
			}
			if err := f.Save(); err != nil {
				return err
			}
			what := role
			if len(colours) > 0 {
				what += " of " + strings.Join(colours, ", ")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s) to %s\n", a.Name, what, file)
			return nil
		},
	}
	agentFileFlag(cmd, &file)
	cmd.Flags().StringSliceVar(&colours, "colours", nil, "the `QUEUES` the agent works, comma-separated")
	cmd.Flags().StringVar(&role, "role", agents.RoleAgent, "the `ROLE`: agent, supervisor or admin")
	cmd.Flags().StringVar(&display, "display", "", "the `NAME` the desk shows (default: the login name)")
	return cmd
}

// newAgentPasswdCmd is 'ticketrouter agent passwd'.
func newAgentPasswdCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "passwd NAME --file FILE",
		Short: "Set an agent's password, asking for it",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			return editAgent(cmd, file, name, func(f *agents.File) error {
				pw, err := agents.ReadPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), name)
				if err != nil {
					return err
				}
				return f.SetPassword(name, pw)
			}, "set the password of "+name+" in "+file)
		},
	}
	agentFileFlag(cmd, &file)
	return cmd
}

// newAgentSetDisabledCmd is 'ticketrouter agent disable', or enable.
func newAgentSetDisabledCmd(disable bool) *cobra.Command {
	var file string
	verb, short := "enable", "Enable a disabled agent again"
	if disable {
		verb, short = "disable", "Disable an agent: no more logins, and its sessions end"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME --file FILE",
		Short: short,
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			name := argv[0]
			return editAgent(cmd, file, name, func(f *agents.File) error {
				if disable {
					return f.Disable(name)
				}
				return f.Enable(name)
			}, verb+"d "+name+" in "+file)
		},
	}
	agentFileFlag(cmd, &file)
	return cmd
}

// editAgent opens the agents file, which must have agent name, edits it,
// saves it and prints done.
func editAgent(cmd *cobra.Command, file, name string, edit func(*agents.File) error, done string) error {
	f, err := openAgents(file)
	if err != nil {
		return err
	}
	if !f.Has(name) {
		return fmt.Errorf("%s has no agent %q", file, name)
	}
	if err := edit(f); err != nil {
		return err
	}
	if err := f.Save(); err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), done)
	return nil
}
