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
	"github.com/ticketrouter/ticketrouter/ingest"
)

// NATSConfig says where tickets go: an embedded server (URL empty) or an
// existing server or cluster, and how the JetStream side is laid out.
type NATSConfig struct {
	// URL lists the servers (nats://host:4222, comma-separated); empty
	// runs an embedded server.
	URL      string         `yaml:"url"`
	Embedded EmbeddedConfig `yaml:"embedded"`

	// Authentication, one of: a credentials file (JWT and NKey seed), an
	// NKey seed, or a user and password.
	Credentials string         `yaml:"credentials"`
	NKeySeed    *ingest.Secret `yaml:"nkey_seed"`
	User        string         `yaml:"user"`
	Password    *ingest.Secret `yaml:"password"`
	// TLS: a CA to trust, and a client certificate when the server asks.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	Stream   string `yaml:"stream"`   // TICKETS
	Replicas int    `yaml:"replicas"` // of the stream, the object store and the buckets; 1
	// DuplicateWindow must outlast the longest retry of one mail; tickets
	// published again after it are still caught by the published-marker
	// bucket. 2h.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// MaxAge is how long tickets (and raw mails) are kept; 90 days.
	MaxAge time.Duration `yaml:"max_age"`
	// AckWait is how long a claimed ticket stays an agent's before the
	// queue hands it out again, unless acknowledged or extended; 5m.
	AckWait time.Duration `yaml:"ack_wait"`
}

// EmbeddedConfig runs the built-in nats-server.
type EmbeddedConfig struct {
	StoreDir  string `yaml:"store_dir"`  // JetStream storage; "nats-data" beside the config
	Host      string `yaml:"host"`       // 127.0.0.1
	Port      int    `yaml:"port"`       // 4222; -1 picks a free one
	MaxStore  int64  `yaml:"max_store"`  // bytes of disk; 10 GiB
	MaxMemory int64  `yaml:"max_memory"` // bytes of memory; 256 MiB
}

// WithDefaults fills in the defaults.
func (c NATSConfig) WithDefaults() NATSConfig {
	if c.Stream == "" {
		c.Stream = "TICKETS"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Hour
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 90 * 24 * time.Hour
	}
	if c.AckWait <= 0 {
		c.AckWait = 5 * time.Minute
	}
	e := &c.Embedded
	if e.StoreDir == "" {
		e.StoreDir = "nats-data"
	}
	if e.Host == "" {
		e.Host = "127.0.0.1"
	}
	if e.Port == 0 {
		e.Port = 4222
	}
	if e.MaxStore <= 0 {
		e.MaxStore = 10 << 30
	}
	if e.MaxMemory <= 0 {
		e.MaxMemory = 256 << 20
	}
	return c
}

// Check reports what is wrong with the settings, naming the field.
func (c NATSConfig) Check() error {
	auth := 0
	for _, set := range []bool{c.Credentials != "", c.NKeySeed != nil, c.User != ""} {
		if set {
			auth++
		}
	}
	switch {
	case auth > 1:
		return errors.New("nats: want at most one of credentials, nkey_seed and user")
	case c.User != "" && c.Password == nil:
		return errors.New("nats.password: missing for user " + c.User)
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("nats: cert_file and key_file go together")
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("nats.replicas: %d is not between 1 and 5", c.Replicas)
	case c.DuplicateWindow < 0 || c.DuplicateWindow > 0 && c.DuplicateWindow < 100*time.Millisecond:
		return fmt.Errorf("nats.duplicate_window: %s is shorter than JetStream's 100ms", c.DuplicateWindow)
	case c.WithDefaults().MaxAge < c.WithDefaults().DuplicateWindow:
		d := c.WithDefaults()
		return fmt.Errorf("nats.max_age: %s is shorter than the duplicate window %s", d.MaxAge, d.DuplicateWindow)
	case c.AckWait < 0 || c.AckWait > 0 && c.AckWait < time.Second:
		return fmt.Errorf("nats.ack_wait: %s is under a second", c.AckWait)
	case c.URL != "" && (c.Embedded != EmbeddedConfig{}):
		return errors.New("nats.embedded: set, but nats.url points at another server")
	}
	if c.NKeySeed != nil {
		if err := c.NKeySeed.Check(); err != nil {
			return fmt.Errorf("nats.nkey_seed: %w", err)
		}
	}
	if c.Password != nil {
		if err := c.Password.Check(); err != nil {
			return fmt.Errorf("nats.password: %w", err)
		}
	}
	return nil
}

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

// Connect connects to the configured servers, or in-process to embedded
// when it is not nil. The connection reconnects by itself for ever; name
// shows in the server's connection list; extra options come last (the
// service adds nats.RetryOnFailedConnect to start before its NATS).
func Connect(ctx context.Context, cfg NATSConfig, embedded *Embedded, name string, log zerolog.Logger, extra ...nats.Option) (*nats.Conn, error) {
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
