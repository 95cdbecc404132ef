package imaptest

import (
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// recordConn is a net.Conn that keeps what is written to it.
type recordConn struct {
	net.Conn
	out strings.Builder
}

func (c *recordConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func TestCapFilterConn(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"capability line", []string{"* CAPABILITY IMAP4rev1 MOVE IDLE UIDPLUS\r\n"}, "* CAPABILITY IMAP4rev1 UIDPLUS\r\n"},
		{"any case", []string{"* capability imap4rev1 idle move\r\n"}, "* capability imap4rev1\r\n"},
		{"response code", []string{"a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in\r\n"}, "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"},
		{"line split over writes", []string{"* CAPABILITY IMAP4rev1 ID", "LE MOVE\r", "\n"}, "* CAPABILITY IMAP4rev1\r\n"},
		{"other lines untouched", []string{"* 3 EXISTS\r\n", "a2 OK done IDLE\r\n"}, "* 3 EXISTS\r\na2 OK done IDLE\r\n"},
		{
			"literal untouched",
			[]string{"* 1 FETCH (BODY[] {26}\r\n", "* CAPABILITY IDLE MOVE\r\n..", ")\r\n* CAPABILITY IMAP4rev1 IDLE\r\n"},
			"* 1 FETCH (BODY[] {26}\r\n* CAPABILITY IDLE MOVE\r\n..)\r\n* CAPABILITY IMAP4rev1\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordConn{}
			c := newImaptestCapFilterConn(rec, []imap.Cap{imap.CapIdle, imap.CapMove})
			for _, w := range tt.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := rec.out.String(); got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
		})
	}
}
