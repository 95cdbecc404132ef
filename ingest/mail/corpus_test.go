package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/internal/corpus"
)

// TestRealworldCorpus parses every third-party fixture of the shared
// corpus: none may fail, hang or come back silently empty.
func TestRealworldCorpus(t *testing.T) {
	dir, files := corpus.Files(t)
	var withProblems, headerless, withAttachments int
	for _, path := range files {
		name, _ := filepath.Rel(dir, path)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			type result struct {
				req *Request
				err error
			}
			done := make(chan result, 1)
			go func() {
				f, err := os.Open(path)
				if err != nil {
					done <- result{nil, err}
					return
				}
				defer f.Close()
				req, err := Parse(f, Limits{})
				done <- result{req, err}
			}()
			var res result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Parse did not return within 10 s")
			}
			if res.err != nil {
				t.Fatalf("Parse: %v", res.err)
			}
			req := res.req
			checkInvariants(t, data, req)
			for _, p := range req.Problems {
				if strings.HasPrefix(p, "internal error") {
					t.Errorf("Parse recovered from a panic: %s", p)
				}
			}
			if req.From == (Mailbox{}) && req.Subject == "" && strings.TrimSpace(req.Text) == "" &&
				len(req.Attachments) == 0 && len(req.Problems) == 0 && !req.Headerless {
				t.Errorf("silently empty request: %+v", req)
			}
			if len(req.Problems) > 0 {
				withProblems++
			}
			if req.Headerless {
				headerless++
			}
			if len(req.Attachments) > 0 {
				withAttachments++
			}
		})
	}
	t.Logf("corpus %s: %d files parsed, %d with problems, %d with attachments, %d headerless",
		dir, len(files), withProblems, withAttachments, headerless)
}
