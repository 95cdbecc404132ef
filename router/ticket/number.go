package ticket

import (
	"strconv"
	"strings"
)

// numberBase is added to a stream sequence to make a ticket number, so
// that numbers all have six digits for the first 899,999 tickets and
// are never mistaken for a count.
const numberBase = 100000

// Number is the short number agents and customers quote for the ticket
// stored at seq in the tickets stream: TR-100001 for the first. The
// stream gives each message one sequence, the same on every replica and
// cluster node, so numbers are unique without any coordination, known as
// soon as the publish is acknowledged, and never given twice: a purge
// keeps the stream's sequence (only deleting the stream starts it again).
func Number(seq uint64) string {
	return "TR-" + strconv.FormatUint(seq+numberBase, 10)
}

// ParseNumber reads a ticket number, "TR-100001" or "100001" (the prefix
// in any case, spaces around allowed), and returns the stream sequence it
// names; false when s is no ticket number.
func ParseNumber(s string) (seq uint64, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) > 3 && strings.EqualFold(s[:3], "TR-") {
		s = s[3:]
	}
	if len(s) < 6 || len(s) > 12 || s[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n <= numberBase {
		return 0, false
	}
	return n - numberBase, true
}
