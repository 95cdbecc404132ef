package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ticketrouter/ticketrouter"

// pkg is one package of the module as go list describes it.
type pkg struct {
	path    string
	imports []string // direct, test files excluded
	deps    []string // transitive, test files excluded
}

// listModule lists the module's packages with their imports and deps.
func listModule(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 3 {
			t.Fatalf("go list line %q", line)
		}
		pkgs[f[0]] = pkg{path: f[0], imports: split(f[1]), deps: split(f[2])}
	}
	return pkgs
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// rule forbids the packages under from to depend on any package under
// one of the prefixes in to.
type rule struct {
	from       string   // a package path prefix, relative to the module ("" is all)
	except     []string // packages under from the rule does not apply to
	to         []string // forbidden prefixes (module-relative when starting with "./")
	transitive bool     // deps rather than direct imports
	why        string
}

var rules = []rule{
	{from: "rules", transitive: true, why: "rules is pure logic: no IMAP, NATS, logging or metrics",
		to: []string{"github.com/emersion/go-imap", "github.com/emersion/go-sasl", "github.com/nats-io", "github.com/rs/zerolog", "github.com/prometheus", "./ingest/imaptest", "./router", "./cmd"}},
	{from: "rules", why: "rules reads parsed mail (ingest/mail), never the IMAP side",
		to: []string{"./ingest"}, except: []string{"./ingest/mail"}},
	{from: "ingest/mail", transitive: true, why: "parsing a mail does no network I/O and no logging",
		to: []string{"net/http", "crypto/tls", "github.com/emersion/go-imap", "github.com/emersion/go-sasl", "github.com/nats-io", "github.com/rs/zerolog", "github.com/prometheus", "./ingest/imaptest", "./rules", "./router", "./cmd"}},
	{from: "ingest", why: "the IMAP side knows nothing of the policy or the queues",
		to: []string{"./rules", "./router", "./cmd"}},
	{from: "router/ticket", transitive: true, why: "agent tools use the ticket document without NATS",
		to: []string{"github.com/nats-io", "github.com/emersion/go-imap", "github.com/rs/zerolog", "./router/broker", "./ingest/imaptest"}},
	{from: "", why: "nothing imports a command", to: []string{"./cmd"}},
	{from: "", except: []string{"./internal/archtest", "./deploy/bench", "./deploy/deskbench"}, why: "test helpers stay out of the binary (the benchmarks, test tools, use them: deskbench for its child processes and free ports)",
		to: []string{"./internal/testproc", "./internal/corpus", "./ingest/imaptest", "./internal/mtatest", "./internal/natstest"}},
}

// TestLayering checks every rule against the module's import graph.
func TestLayering(t *testing.T) {
	pkgs := listModule(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, r := range rules {
		from := abs(r.from)
		for path, p := range pkgs {
			if !under(path, from) || matchesAny(path, r.except) || matchesAny(path, r.to) && r.from == "" {
				continue
			}
			list := p.imports
			if r.transitive {
				list = p.deps
			}
			for _, dep := range list {
				if matchesAny(dep, r.to) && !matchesAny(dep, r.except) && !under(dep, path) {
					t.Errorf("%s depends on %s: %s", strings.TrimPrefix(path, module+"/"), dep, r.why)
				}
			}
		}
	}
}

// TestRulesFindViolations: each rule catches what it forbids, so that a
// typo in a prefix cannot make the test pass by matching nothing.
func TestRulesFindViolations(t *testing.T) {
	for _, tt := range []struct{ pkg, dep string }{
		{"rules", "github.com/emersion/go-imap/v2"},
		{"rules/senderauth", "github.com/rs/zerolog"},
		{"rules/accounts", module + "/ingest"},
		{"ingest/mail", "net/http"},
		{"ingest", module + "/rules/accounts"},
		{"router/ticket", "github.com/nats-io/nats.go"},
		{"router", module + "/cmd/ticketrouter"},
	} {
		caught := false
		for _, r := range rules {
			if under(abs(tt.pkg), abs(r.from)) && !matchesAny(abs(tt.pkg), r.except) && matchesAny(tt.dep, r.to) && !matchesAny(tt.dep, r.except) {
				caught = true
			}
		}
		if !caught {
			t.Errorf("no rule forbids %s to import %s", tt.pkg, tt.dep)
		}
	}
}

// abs makes a module-relative path ("rules", "./rules") absolute.
func abs(p string) string {
	p = strings.TrimPrefix(p, "./")
	if p == "" {
		return module
	}
	return module + "/" + p
}

func matchesAny(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(p, "./") {
			p = abs(p)
		}
		if under(path, p) {
			return true
		}
	}
	return false
}

// under reports whether path is prefix or a package below it.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
