package config

import (
	"slices"
	"strings"
)

// suggest returns " (did you mean X?)" for an unknown key of the section
// at path, whose known keys are fields: the known key nearest to it by
// edit distance, when near enough to be a slip; else the setting it names
// in another section (poll_interval written at the top level); else "".
func suggest(key, path string, fields map[string][]int) string {
	limit := 2
	if len([]rune(key)) <= 4 {
		limit = 1
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names) // ties go the same way every time
	best, bestD := "", limit+1
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), name); d < bestD {
			best, bestD = name, d
		}
	}
	if best != "" {
		return " (did you mean " + best + "?)"
	}
	var elsewhere []string
	for _, s := range settings() {
		for f := range enclosing(s.path) {
			i := strings.LastIndexByte(f, '.')
			if f[i+1:] == key && f != path && (path == "" || !strings.HasPrefix(f, path+".")) && !slices.Contains(elsewhere, f) {
				elsewhere = append(elsewhere, f)
			}
		}
	}
	if len(elsewhere) == 1 {
		return " (did you mean " + elsewhere[0] + "?)"
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b: the fewest
// insertions, deletions and substitutions of characters that turn one
// into the other.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
