package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
)

// Secret is where a password or an OAuth2 access token comes from: an
// environment variable, a file, or a command that prints it. Never the
// configuration file itself, and never a log line: Secret has no String
// method that would show it, and errors name only its source.
type Secret struct {
	Env     string   `yaml:"env"`     // name of an environment variable
	File    string   `yaml:"file"`    // path of a file holding it (one line)
	Command []string `yaml:"command"` // a command printing it on stdout
	// TTL is how long a value from Command is reused; 5 minutes when zero.
	// A rejected value is dropped at once and fetched again.
	TTL time.Duration `yaml:"ttl"`

	mu      sync.Mutex
	cached  string
	fetched time.Time
}

// Check reports a Secret that names no source or several.
func (s *Secret) Check() error {
	n := 0
	for _, set := range []bool{s.Env != "", s.File != "", len(s.Command) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("want exactly one of env, file and command")
	}
	return nil
}

// Get returns the secret's current value.
func (s *Secret) Get(ctx context.Context) (string, error) {
	switch {
	case s.Env != "":
		v := os.Getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("secret: environment variable %s is empty or unset", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("secret: %w", err) // names the file only
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("secret: file %s is empty", s.File)
		}
		return v, nil
	case len(s.Command) > 0:
		s.mu.Lock()
		defer s.mu.Unlock()
		ttl := s.TTL
		if ttl <= 0 {
			ttl = 5 * time.Minute
		}
		if s.cached != "" && time.Since(s.fetched) < ttl {
			return s.cached, nil
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, s.Command[0], s.Command[1:]...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("secret: command %s: %w", s.Command[0], err)
		}
		v := strings.TrimSpace(stdout.String())
		if v == "" {
			return "", fmt.Errorf("secret: command %s printed nothing", s.Command[0])
		}
		s.cached, s.fetched = v, time.Now()
		return v, nil
	}
	return "", errors.New("secret: no source configured")
}

// Invalidate drops a cached value after the server rejected it, so that
// the next Get fetches a fresh one (an expired OAuth2 token).
func (s *Secret) Invalidate() {
	s.mu.Lock()
	s.cached = ""
	s.mu.Unlock()
}

// SASL mechanisms for IMAP authentication.
const (
	AuthLogin       = "login"       // LOGIN with a password (the default)
	AuthPlain       = "plain"       // AUTHENTICATE PLAIN with a password
	AuthXOAuth2     = "xoauth2"     // Google and Microsoft 365 OAuth2 bearer tokens
	AuthOAuthBearer = "oauthbearer" // RFC 7628 bearer tokens
)

// saslClient returns the SASL client for mechanism, or nil for LOGIN.
func saslClient(mechanism, username, secret string) (sasl.Client, error) {
	switch mechanism {
	case "", AuthLogin:
		return nil, nil
	case AuthPlain:
		return sasl.NewPlainClient("", username, secret), nil
	case AuthXOAuth2:
		return NewXOAuth2Client(username, secret), nil
	case AuthOAuthBearer:
		return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: username, Token: secret}), nil
	}
	return nil, fmt.Errorf("unknown authentication mechanism %q (want %s, %s, %s or %s)", mechanism, AuthLogin, AuthPlain, AuthXOAuth2, AuthOAuthBearer)
}

// NewXOAuth2Client returns the client side of XOAUTH2, the SASL mechanism
// of Google and Microsoft for OAuth2 access tokens, which go-sasl does not
// have: the outgoing side (SMTP) authenticates with it as IMAP does.
func NewXOAuth2Client(username, token string) sasl.Client {
	return &xoauth2Client{username: username, token: token}
}

// xoauth2Client is the XOAUTH2 SASL mechanism of Google and Microsoft,
// which go-sasl does not have.
type xoauth2Client struct {
	username, token string
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.username + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next answers the server's error challenge (a JSON status) with an empty
// response, after which the server fails the authentication.
func (c *xoauth2Client) Next([]byte) ([]byte, error) {
	return []byte{}, nil
}
