package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// probeBodyLimit bounds how much of /readyz's answer Probe reads and
// quotes: the reasons of a service that is not ready are short.
const probeBodyLimit = 1000

// Probe asks a running service whether it is ready, for a container's
// health check or a script: it GETs url (the service's /readyz) and
// returns nil on 200 OK. Otherwise the error says why on one line: the
// status and the service's reasons, or why it could not be asked.
func Probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, probeBodyLimit+1))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var lines []string
	for line := range strings.Lines(string(body[:min(len(body), probeBodyLimit)])) {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	reasons := strings.Join(lines, "; ")
	if len(body) > probeBodyLimit {
		reasons += "..."
	}
	if err != nil {
		reasons += fmt.Sprintf(" (answer cut short: %v)", err)
	}
	return fmt.Errorf("probe %s: %s: %s", url, resp.Status, reasons)
}

// ReadyURL is the /readyz URL of a service whose http.listen is listen.
// A service listening on every interface (0.0.0.0, ::, or no host) is
// asked on loopback, as a health check in its container or on its
// machine would.
func ReadyURL(listen string) (string, error) {
	if listen == "off" {
		return "", fmt.Errorf("http.listen is off: the service serves no /readyz")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.listen: %q is not host:port", listen)
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}
