package ticket

import "testing"

func TestNumber(t *testing.T) {
	for _, seq := range []uint64{1, 2, 4233, 899_999, 900_000, 12_345_678} {
		n := Number(seq)
		got, ok := ParseNumber(n)
		if !ok || got != seq {
			t.Errorf("ParseNumber(Number(%d) = %q) = %d, %v", seq, n, got, ok)
		}
	}
	if n := Number(1); n != "TR-100001" {
		t.Errorf("Number(1) = %q, want TR-100001", n)
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in  string
		seq uint64
		ok  bool
	}{
		{"TR-104233", 4233, true},
		{"tr-104233", 4233, true},
		{" 104233 ", 4233, true},
		{"TR-100000", 0, false}, // no message has sequence 0
		{"TR-99999", 0, false},
		{"TR-", 0, false},
		{"TR-+104233", 0, false},
		{"TR-1042330000000", 0, false}, // 13 digits
		{"TR-10423x", 0, false},
		{"104233@example.com", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		seq, ok := ParseNumber(tt.in)
		if seq != tt.seq || ok != tt.ok {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d, %v", tt.in, seq, ok, tt.seq, tt.ok)
		}
	}
}
