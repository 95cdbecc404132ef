package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// NATSConfig says where tickets go: the configuration's nats section.
type NATSConfig = config.NATS

// EmbeddedConfig runs the built-in nats-server: the configuration's
// nats.embedded section.
type EmbeddedConfig = config.Embedded

// StartEmbedded starts an in-process nats-server with JetStream, listening
// on the configured host and port so that agents and the nats CLI can
// connect too.
func StartEmbedded(cfg EmbeddedConfig, log zerolog.Logger) (*server.Server, error) {
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	dir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "ticketrouter", Host: cfg.Host, Port: cfg.Port,
		JetStream: true, StoreDir: dir, JetStreamMaxStore: cfg.MaxStore, JetStreamMaxMemory: cfg.MaxMemory,
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS: not ready within 10 s on %s:%d", cfg.Host, cfg.Port)
	}
	log.Info().Str("url", s.ClientURL()).Str("store_dir", dir).Msg("embedded NATS started")
	return s, nil
}

// Connect connects to the configured servers, or in-process to embedded
// when it is not nil. The connection reconnects by itself for ever; name
// shows in the server's connection list; extra options come last (the
// service adds nats.RetryOnFailedConnect to start before its NATS).
func Connect(ctx context.Context, cfg NATSConfig, embedded *server.Server, name string, log zerolog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() || nc.IsDraining() {
				return // our own shutdown
			}
			log.Warn().Err(err).Msg("NATS disconnected")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			e := log.Warn().Err(err)
			if sub != nil {
				e = e.Str("subject", sub.Subject)
			}
			e.Msg("NATS error")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Msg("NATS reconnected")
		}),
	}
	url := cfg.URL
	if embedded != nil {
		opts = append(opts, nats.InProcessServer(embedded))
		url = embedded.ClientURL()
	}
	switch {
	case cfg.Credentials != "":
		opts = append(opts, nats.UserCredentials(cfg.Credentials))
	case cfg.NKeySeed != nil:
		seed, err := cfg.NKeySeed.Get(ctx)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_seed: %w", err)
		}
		opt, err := nkeyOption(seed)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opt)
	case cfg.User != "":
		pw, err := cfg.Password.Get(ctx)
		if err != nil {
			return nil, fmt.Errorf("nats.password: %w", err)
		}
		opts = append(opts, nats.UserInfo(cfg.User, pw))
	}
	if cfg.CAFile != "" || cfg.CertFile != "" {
		t, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(t))
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}

func tlsConfig(cfg NATSConfig) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("nats.ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats.ca_file: %s holds no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("nats.cert_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// nkeyOption signs the server's nonce with the NKey seed.
func nkeyOption(seed string) (nats.Option, error) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, errors.New("nats.nkey_seed: not a valid NKey seed") // never echo the seed
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, errors.New("nats.nkey_seed: not a valid NKey seed")
	}
	return nats.Nkey(pub, kp.Sign), nil
}
