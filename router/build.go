package router

import (
	"fmt"
	"runtime/debug"
)

// BuildInfo says which ticketrouter this is: for --version, the
// ticketrouter_build_info metric and bug reports.
type BuildInfo struct {
	Version   string // the module version, "(devel)" for a build from a checkout
	Revision  string // the VCS commit, "" when unknown
	Modified  bool   // the checkout had uncommitted changes
	GoVersion string
}

// Build reads the build information the Go toolchain put in the binary.
func Build() BuildInfo {
	b := BuildInfo{Version: "(devel)", GoVersion: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.GoVersion = info.GoVersion
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is "VERSION (commit REV[, modified], GOVERSION)".
func (b BuildInfo) String() string {
	rev := "commit unknown"
	if b.Revision != "" {
		rev = "commit " + b.Revision[:min(12, len(b.Revision))]
		if b.Modified {
			rev += ", modified"
		}
	}
	return fmt.Sprintf("%s (%s, %s)", b.Version, rev, b.GoVersion)
}
