package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
)

// TestNATSConfigCheck: settings JetStream or the connection would refuse
// are reported before anything starts, naming the field.
func TestNATSConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  NATSConfig
		want string // "" is fine
	}{
		{"defaults", NATSConfig{}, ""},
		{"external with user", NATSConfig{URL: "nats://n1:4222", User: "u", Password: &ingest.Secret{Env: "P"}}, ""},
		{"two ways to log in", NATSConfig{User: "u", Password: &ingest.Secret{Env: "P"}, Credentials: "x.creds"}, "nats: want at most one of credentials, nkey_seed and user"},
		{"user without password", NATSConfig{User: "u"}, "nats.password: missing for user u"},
		{"certificate without key", NATSConfig{CertFile: "c.pem"}, "nats: cert_file and key_file go together"},
		{"six replicas", NATSConfig{Replicas: 6}, "nats.replicas: 6 is not between 1 and 5"},
		{"url and embedded", NATSConfig{URL: "nats://n1:4222", Embedded: EmbeddedConfig{Port: 4223}}, "nats.embedded: set, but nats.url"},
		{"tiny duplicate window", NATSConfig{DuplicateWindow: 10 * time.Millisecond}, "nats.duplicate_window: 10ms is shorter than JetStream's 100ms"},
		{"max age under the window", NATSConfig{MaxAge: time.Hour}, "nats.max_age: 1h0m0s is shorter than the duplicate window 2h0m0s"},
		{"ack wait under a second", NATSConfig{AckWait: 500 * time.Millisecond}, "nats.ack_wait: 500ms is under a second"},
		{"password source twice", NATSConfig{User: "u", Password: &ingest.Secret{Env: "P", File: "f"}}, "nats.password: want exactly one of env, file and command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check: %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("Check: %v, want an error beginning %q", err, tt.want)
			}
		})
	}
}
