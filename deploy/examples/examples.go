// Package examples holds the example account directory and one sample
// mail per row of the policy table (POLICY.md), built into the binary so
// that the demo needs no files, and read by tests and the benchmark.
package examples

import "embed"

// FS holds accounts.yaml and mail/*.eml.
//
//go:embed accounts.yaml mail/*.eml
var FS embed.FS
