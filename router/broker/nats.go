package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// Embedded is the in-process nats-server. It holds the lock of its store
// directory until Shutdown.
type Embedded struct {
	*server.Server
	lock *storeLock
}

// Shutdown stops the server and releases its store directory. It may be
// called more than once.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.lock.release()
}

// embeddedReadyTimeout bounds how long StartEmbedded waits for the server
// to listen; a server that cannot listen says so at once.
const embeddedReadyTimeout = 10 * time.Second

// StartEmbedded starts an in-process nats-server with JetStream, listening
// on the configured host and port so that agents and the nats CLI can
// connect too. It first locks the store directory: two servers writing one
// JetStream store corrupt it, so a second process on the same directory is
// refused with a *StoreInUseError naming the first. A listener that cannot
// be opened (the port taken) is reported at once.
func StartEmbedded(cfg EmbeddedConfig, log zerolog.Logger) (*Embedded, error) {
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	dir, err := filepath.Abs(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	lock, err := lockStore(dir)
	if err != nil {
		return nil, err
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "ticketrouter", Host: cfg.Host, Port: cfg.Port,
		JetStream: true, StoreDir: dir, JetStreamMaxStore: cfg.MaxStore, JetStreamMaxMemory: cfg.MaxMemory,
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	e := &Embedded{Server: s, lock: lock}
	slog := &serverLog{log: log.With().Str("component", "nats-server").Logger(), fatal: make(chan string, 1)}
	s.SetLogger(slog, false, false)
	go s.Start()
	hostPort := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	for deadline := time.Now().Add(embeddedReadyTimeout); !s.ReadyForConnections(100 * time.Millisecond); {
		select {
		case msg := <-slog.fatal:
			e.Shutdown()
			return nil, startError(hostPort, msg)
		default:
		}
		if time.Now().After(deadline) {
			e.Shutdown()
			return nil, fmt.Errorf("embedded NATS: not ready within %s on %s", embeddedReadyTimeout, hostPort)
		}
	}
	log.Info().Str("url", s.ClientURL()).Str("store_dir", dir).Msg("embedded NATS started")
	return e, nil
}

// startError explains a fatal error of the embedded server's start.
func startError(hostPort, msg string) error {
	if strings.Contains(msg, syscall.EADDRINUSE.Error()) {
		return fmt.Errorf("embedded NATS: listen on %s: %w: another process listens there (another ticketrouter, or a nats-server); stop it, or set nats.embedded.port to a free port",
			hostPort, syscall.EADDRINUSE)
	}
	return fmt.Errorf("embedded NATS: %s", msg)
}

// serverLog is the embedded server's logger: errors and warnings go to
// the service's log, and a fatal error (it cannot listen, JetStream cannot
// start) to StartEmbedded, which stops the server and reports it.
type serverLog struct {
	log   zerolog.Logger
	fatal chan string
}

func (l *serverLog) Noticef(string, ...any) {}
func (l *serverLog) Debugf(string, ...any)  {}
func (l *serverLog) Tracef(string, ...any)  {}
func (l *serverLog) Warnf(format string, v ...any) {
	l.log.Warn().Msgf(format, v...)
}
func (l *serverLog) Errorf(format string, v ...any) {
	l.log.Error().Msgf(format, v...)
}
func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Msg(msg)
	select {
	case l.fatal <- msg:
	default: // one is enough
	}
}

// InboxPrefix heads the subjects on which the service's connections get
// their replies: JetStream's answers (key-value entries, the raw mails the
// desk shows), and the messages of watches and object reads. It is not
// the default _INBOX, so that another user of the account allowed to
// subscribe to _INBOX.> (the agents of deploy/nats-server.conf, for their
// own replies) cannot subscribe to the service's.
const InboxPrefix = "_INBOX_ticketrouter"

// Connect connects to the configured servers, or in-process to embedded
// when it is not nil, with its replies on InboxPrefix. The connection
// reconnects by itself for ever; name shows in the server's connection
// list; extra options come last (the service adds
// nats.RetryOnFailedConnect to start before its NATS).
func Connect(ctx context.Context, cfg NATSConfig, embedded *Embedded, name string, log zerolog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix),
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
			log.Info().Str("url", RedactURL(nc.ConnectedUrl())).Msg("NATS reconnected")
		}),
	}
	url := cfg.URL
	if embedded != nil {
		opts = append(opts, nats.InProcessServer(embedded))
		url = embedded.ClientURL()
	}
	auth, err := authOptions(ctx, cfg)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(append(opts, auth...), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactURL(url), redactError(err, url))
	}
	return nc, nil
}

// authOptions are the options that log in as cfg says (a credentials
// file, an NKey seed, or a user and password) and set up TLS.
func authOptions(ctx context.Context, cfg NATSConfig) ([]nats.Option, error) {
	var opts []nats.Option
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
	return opts, nil
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
