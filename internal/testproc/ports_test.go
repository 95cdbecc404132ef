package testproc

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePorts(t *testing.T) {
	for _, n := range []int{0, 1, 8} {
		ports, err := FreePorts(n)
		if err != nil {
			t.Fatalf("FreePorts(%d): %v", n, err)
		}
		if len(ports) != n {
			t.Fatalf("FreePorts(%d) gave %d ports", n, len(ports))
		}
		seen := map[int]bool{}
		var lns []net.Listener
		for _, p := range ports {
			if seen[p] {
				t.Errorf("FreePorts(%d) = %v: %d twice", n, ports, p)
			}
			seen[p] = true
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Errorf("port %d of FreePorts(%d) cannot be bound: %v", p, n, err)
				continue
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
}
