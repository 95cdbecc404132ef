package agents

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadPassword reads a new password for agent name, for the agent
// commands: from the terminal without echo, asked twice, when in is one;
// else the first line of in (a script's pipe), without its line ending.
// Prompts go to prompt. The password is checked with CheckPassword; no
// error holds it.
func ReadPassword(in io.Reader, prompt io.Writer, name string) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return readTerminal(int(f.Fd()), prompt, name)
	}
	r := bufio.NewReader(io.LimitReader(in, MaxPasswordLength+2))
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if !strings.HasSuffix(line, "\n") && len(line) > MaxPasswordLength {
		return "", fmt.Errorf("read the password: the first line of the input is over %d bytes", MaxPasswordLength)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("read the password: standard input has none: type it at a terminal, or give it as the first line of standard input")
	}
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	return pw, nil
}

// readTerminal asks for the password twice on terminal fd.
func readTerminal(fd int, prompt io.Writer, name string) (string, error) {
	fmt.Fprintf(prompt, "New password for %s: ", name)
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if err := CheckPassword(string(first)); err != nil {
		return "", err
	}
	fmt.Fprintf(prompt, "Again: ")
	second, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if string(first) != string(second) {
		return "", errors.New("the two passwords differ")
	}
	return string(first), nil
}
