package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/ticketrouter/ticketrouter/ingest"
)

// DefaultURL is where an agent tool connects when nothing names a server:
// the embedded server's default listener.
const DefaultURL = "nats://127.0.0.1:4222"

// Target is where an agent tool connects: the servers, how to log in, and
// where these came from. ResolveTarget picks it from the tool's sources.
type Target struct {
	// URL lists the servers, comma-separated.
	URL string
	// From names the source of URL in messages: "--nats",
	// `nats context "prod"`, "NATS_URL", the configuration file, or
	// "default".
	From string
	// Auth holds how to log in (credentials file, NKey seed, user and
	// password) and the TLS files, in the service's own settings.
	Auth NATSConfig
	// Token, or Password for Auth.User, given as a value (a nats CLI
	// context, NATS_PASSWORD) rather than a Secret.
	Token, Password string
	// TLSFirst starts TLS before the server's greeting (a context's
	// tls_first).
	TLSFirst bool
	// InboxPrefix, JSDomain and JSAPIPrefix are a context's
	// inbox_prefix, jetstream_domain and jetstream_api_prefix.
	InboxPrefix, JSDomain, JSAPIPrefix string
}

// Sources are the places an agent tool may take its NATS server and
// credentials from. ResolveTarget takes the first that names a server, in
// this order:
//
//  1. URL (--nats): that address, with the credentials and TLS settings
//     of the source that would apply without it (as the nats CLI's
//     --server does with a context);
//  2. Context (--context NAME), or else NATS_CONTEXT: that nats CLI
//     context;
//  3. NATS_URL, with NATS_USER and NATS_PASSWORD, NATS_CREDS, NATS_NKEY,
//     NATS_CERT, NATS_KEY and NATS_CA;
//  4. the nats CLI's selected context (context.txt);
//  5. Config (--config): its nats section, or its embedded server's
//     listener;
//  6. DefaultURL.
//
// NATS_URL comes before the selected context as it does for the nats CLI:
// a variable set for one shell outranks a choice saved for every one.
type Sources struct {
	URL     string
	Context string
	// Getenv reads the environment (os.Getenv; tests give their own).
	Getenv func(string) string
	// Config is the nats section of the service's configuration file
	// ConfigFile, nil without one.
	Config     *NATSConfig
	ConfigFile string
}

// ResolveTarget picks the server and credentials of an agent tool from
// its sources (see Sources for the order).
func ResolveTarget(src Sources) (Target, error) {
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	t, err := baseTarget(src, getenv)
	if err != nil {
		return Target{}, err
	}
	if src.URL != "" {
		t.URL, t.From = src.URL, "--nats"
	}
	return t, nil
}

// baseTarget is the target without --nats.
func baseTarget(src Sources, getenv func(string) string) (Target, error) {
	dir := contextDir(getenv)
	if name, from := src.Context, "--context"; name != "" || getenv("NATS_CONTEXT") != "" {
		if name == "" {
			name, from = getenv("NATS_CONTEXT"), "NATS_CONTEXT"
		}
		return loadContext(dir, getenv("HOME"), name, from)
	}
	if u := getenv("NATS_URL"); u != "" {
		return envTarget(u, getenv), nil
	}
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "context.txt"))
		switch {
		case err == nil && strings.TrimSpace(string(b)) != "":
			return loadContext(dir, getenv("HOME"), strings.TrimSpace(string(b)), "selected with 'nats context select'")
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return Target{}, fmt.Errorf("the nats CLI's selected context: %w", err)
		}
	}
	if src.Config != nil {
		u, err := ListenerURL(*src.Config)
		if err != nil && src.URL == "" {
			return Target{}, fmt.Errorf("%s: %w: pass --nats URL", src.ConfigFile, err)
		}
		auth := *src.Config
		auth.URL, auth.Embedded = u, EmbeddedConfig{}
		return Target{URL: u, From: src.ConfigFile, Auth: auth}, nil
	}
	return Target{URL: DefaultURL, From: "default"}, nil
}

// ListenerURL is where clients reach the configured servers: the URL, or
// the embedded server's listener (127.0.0.1 for a listener on every
// address).
func ListenerURL(c NATSConfig) (string, error) {
	if c.URL != "" {
		return c.URL, nil
	}
	e := c.WithDefaults().Embedded
	if e.Port < 0 {
		return "", fmt.Errorf("nats.embedded.port is %d (any free port)", e.Port)
	}
	host := e.Host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(e.Port)), nil
}

// envTarget is the target NATS_URL and its companions name.
func envTarget(u string, getenv func(string) string) Target {
	t := Target{URL: u, From: "NATS_URL"}
	t.Auth.User, t.Password = getenv("NATS_USER"), getenv("NATS_PASSWORD")
	t.Auth.Credentials = getenv("NATS_CREDS")
	if f := getenv("NATS_NKEY"); f != "" {
		t.Auth.NKeySeed = &ingest.Secret{File: f}
	}
	t.Auth.CertFile, t.Auth.KeyFile, t.Auth.CAFile = getenv("NATS_CERT"), getenv("NATS_KEY"), getenv("NATS_CA")
	return t
}

// contextDir is the nats CLI's directory of contexts:
// $XDG_CONFIG_HOME/nats/context, or ~/.config/nats/context; "" when there
// is no home.
func contextDir(getenv func(string) string) string {
	base := getenv("XDG_CONFIG_HOME")
	if base == "" {
		home := getenv("HOME")
		if home == "" {
			return ""
		}
		base = filepath.Join(home, ".config")
	}
	return filepath.Join(base, "nats", "context")
}

// natsContext is a nats CLI context file
// (https://github.com/nats-io/nats-architecture-and-design, ADR-21).
type natsContext struct {
	Description        string `json:"description"`
	URL                string `json:"url"`
	Token              string `json:"token"`
	User               string `json:"user"`
	Password           string `json:"password"`
	Creds              string `json:"creds"`
	NKey               string `json:"nkey"`
	Cert               string `json:"cert"`
	Key                string `json:"key"`
	CA                 string `json:"ca"`
	NSC                string `json:"nsc"`
	JetStreamDomain    string `json:"jetstream_domain"`
	JetStreamAPIPrefix string `json:"jetstream_api_prefix"`
	InboxPrefix        string `json:"inbox_prefix"`
	UserJWT            string `json:"user_jwt"`
	TLSFirst           bool   `json:"tls_first"`
	WindowsCertStore   string `json:"windows_cert_store"`
	SocksProxy         string `json:"socks_proxy"`
}

// loadContext reads context name from dir; from says who named it, home
// is the home directory ~ stands for.
func loadContext(dir, home, name, from string) (Target, error) {
	what := fmt.Sprintf("nats context %q", name)
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return Target{}, fmt.Errorf("%s (%s): not a context name", what, from)
	}
	if dir == "" {
		return Target{}, fmt.Errorf("%s (%s): no home directory to find it in", what, from)
	}
	path := filepath.Join(dir, name+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Target{}, fmt.Errorf("%s (%s): %w", what, from, err)
	}
	var c natsContext
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&c); err != nil {
		return Target{}, fmt.Errorf("%s: %s: %w", what, path, err)
	}
	for field, set := range map[string]bool{
		"nsc": c.NSC != "", "user_jwt": c.UserJWT != "", "windows_cert_store": c.WindowsCertStore != "", "socks_proxy": c.SocksProxy != "",
	} {
		if set {
			return Target{}, fmt.Errorf("%s: %s: %s is not supported by ticketrouter: use a creds file, or pass --nats", what, path, field)
		}
	}
	t := Target{URL: c.URL, From: what, Token: c.Token, Password: c.Password, TLSFirst: c.TLSFirst,
		InboxPrefix: c.InboxPrefix, JSDomain: c.JetStreamDomain, JSAPIPrefix: c.JetStreamAPIPrefix}
	if t.URL == "" {
		t.URL = DefaultURL
	}
	t.Auth.User = c.User
	for _, f := range []struct {
		field, value string
		to           *string
	}{
		{"creds", c.Creds, &t.Auth.Credentials}, {"nkey", c.NKey, nil},
		{"cert", c.Cert, &t.Auth.CertFile}, {"key", c.Key, &t.Auth.KeyFile}, {"ca", c.CA, &t.Auth.CAFile},
	} {
		if f.value == "" {
			continue
		}
		p, err := contextPath(f.value, home)
		if err != nil {
			return Target{}, fmt.Errorf("%s: %s: %s: %w", what, path, f.field, err)
		}
		if f.to != nil {
			*f.to = p
		} else {
			t.Auth.NKeySeed = &ingest.Secret{File: p}
		}
	}
	return t, nil
}

// contextPath is the file a context's creds, nkey, cert, key or ca names:
// a path, ~ for the home directory, or a file:// URI. Credential URIs of
// other schemes (nsc://, op://, env://, data:) need the nats CLI.
func contextPath(v, home string) (string, error) {
	if p, ok := strings.CutPrefix(v, "file://"); ok {
		return p, nil
	}
	if i := strings.Index(v, "://"); i > 0 {
		return "", fmt.Errorf("%s URIs are not supported by ticketrouter: name a file", v[:i+3])
	}
	if strings.HasPrefix(v, "data:") {
		return "", errors.New("data: URIs are not supported by ticketrouter: name a file")
	}
	if rest, ok := strings.CutPrefix(v, "~"); ok && (rest == "" || rest[0] == '/') {
		if home == "" {
			return "", fmt.Errorf("%q: no home directory ($HOME)", v)
		}
		return home + rest, nil
	}
	return v, nil
}

// options are the connection options t needs beyond its URL.
func (t Target) options() []nats.Option {
	var opts []nats.Option
	if t.Token != "" {
		opts = append(opts, nats.Token(t.Token))
	}
	if t.Auth.User != "" && t.Auth.Password == nil {
		opts = append(opts, nats.UserInfo(t.Auth.User, t.Password))
	}
	if t.TLSFirst {
		opts = append(opts, nats.TLSHandshakeFirst())
	}
	if t.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(t.InboxPrefix))
	}
	return opts
}
