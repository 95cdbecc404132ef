package router

import (
	"fmt"
	"net"
	"strings"
)

// Notifier tells the service manager that started the process how the
// service is doing, by systemd's notification protocol (sd_notify(3)):
// one datagram of VARIABLE=value lines (READY=1, STOPPING=1, STATUS=...)
// to the unix socket named by $NOTIFY_SOCKET. With Type=notify, systemd
// counts the service as started only at READY=1, so that units ordered
// after it, and 'systemctl start', wait until it serves; 'systemctl
// status' shows the last STATUS. A nil Notifier does nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// NewNotifier returns a Notifier for socket, the value of NOTIFY_SOCKET:
// a path, or a name in Linux's abstract namespace ("@name"). It returns
// nil when socket is empty (not started by a service manager that
// listens), and an error for an address it cannot use (systemd's vsock:
// addresses, for virtual machines).
func NewNotifier(socket string) (*Notifier, error) {
	if socket == "" {
		return nil, nil
	}
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") {
		return nil, fmt.Errorf("NOTIFY_SOCKET %q: want a socket path or an @abstract name", socket)
	}
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// Notify sends the state, one VARIABLE=value a line, in one datagram.
func (n *Notifier) Notify(state ...string) error {
	if n == nil {
		return nil
	}
	var msg strings.Builder
	for _, s := range state {
		if strings.Contains(s, "\n") || !strings.Contains(s, "=") {
			return fmt.Errorf("notify: %q is not one VARIABLE=value line", s)
		}
		msg.WriteString(s)
		msg.WriteByte('\n')
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(msg.String())); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr.Name, err)
	}
	return nil
}

// notify tells the service manager, if any, the state; a failure is
// logged, never the service's.
func (s *Service) notify(state ...string) {
	if err := s.notifier.Notify(state...); err != nil {
		s.log.Warn().Err(err).Msg("could not tell the service manager")
	}
}

// runningStatus is the STATUS of a replica that serves.
func (s *Service) runningStatus() string {
	return statusLine("running as replica %s: %d accounts, mailboxes %s", s.cfg.Replica.ID,
		s.pipeline.Directory().Len(), strings.Join(s.cfg.IMAP.Mailboxes, ", "))
}

// statusLine is a STATUS= line: the formatted text on one line.
func statusLine(format string, args ...any) string {
	return "STATUS=" + strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
}
