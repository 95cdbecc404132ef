package broker

import (
	"fmt"
	"net"
	"strconv"

	"github.com/nats-io/nats.go"
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
// credentials from. ResolveTarget takes the first that names a server:
// URL (--nats), with the credentials and TLS settings of the source that
// would apply without it; Config (--config): its nats section, or its
// embedded server's listener; DefaultURL.
type Sources struct {
	URL string
	// Config is the nats section of the service's configuration file
	// ConfigFile, nil without one.
	Config     *NATSConfig
	ConfigFile string
}

// ResolveTarget picks the server and credentials of an agent tool from
// its sources (see Sources for the order).
func ResolveTarget(src Sources) (Target, error) {
	t := Target{URL: DefaultURL, From: "default"}
	if src.Config != nil {
		u, err := src.Config.ListenerURL()
		if err != nil && src.URL == "" {
			return Target{}, fmt.Errorf("%s: %w: pass --nats URL", src.ConfigFile, err)
		}
		auth := *src.Config
		auth.URL, auth.Embedded = u, EmbeddedConfig{}
		t = Target{URL: u, From: src.ConfigFile, Auth: auth}
	}
	if src.URL != "" {
		t.URL, t.From = src.URL, "--nats"
	}
	return t, nil
}

// ListenerURL is where clients reach the configured servers: the URL, or
// the embedded server's listener (127.0.0.1 for a listener on every
// address).
func (c NATSConfig) ListenerURL() (string, error) {
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
