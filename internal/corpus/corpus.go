// Package corpus finds the third-party corpus of odd and malformed mail
// that tests run through the parser and the pipeline: every file of it
// must end parsed or quarantined, never crash, never be lost. It lives
// beside the repository (../shared/corpus/realworld) or where
// $TICKETROUTER_CORPUS says; tests that read it skip without it.
package corpus

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir returns the corpus folder: $TICKETROUTER_CORPUS, else
// shared/corpus/realworld beside the module's root (found by walking up
// from the working directory to go.mod).
func Dir() string {
	if d := os.Getenv("TICKETROUTER_CORPUS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "corpus", "realworld")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// List returns the corpus folder and every .eml file under it, in walk
// order; an error when the folder cannot be read.
func List() (string, []string, error) {
	dir := Dir()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".eml") {
			files = append(files, path)
		}
		return nil
	})
	return dir, files, err
}

// Files is List for a test: it skips tb when the corpus is not there, and
// fails it when the corpus holds no mail.
func Files(tb testing.TB) (string, []string) {
	tb.Helper()
	dir := Dir()
	if _, err := os.Stat(dir); err != nil {
		tb.Skipf("corpus folder %q not found (set TICKETROUTER_CORPUS to its path): %v", dir, err)
	}
	dir, files, err := List()
	if err != nil {
		tb.Fatalf("walk %s: %v", dir, err)
	}
	if len(files) == 0 {
		tb.Fatalf("no .eml files under %s", dir)
	}
	return dir, files
}
