package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// TestList: the .eml files under the folder, whatever their letter case,
// and nothing else.
func TestList(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.eml", "sub/b.EML", "c.txt"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TICKETROUTER_CORPUS", dir)
	got, files, err := List()
	if err != nil || got != dir || len(files) != 2 {
		t.Fatalf("List = %q, %q, %v; want %q and two files", got, files, err, dir)
	}
}

// TestDirBesideModule: without the variable, the corpus is looked for
// beside the module's root, from any package folder.
func TestDirBesideModule(t *testing.T) {
	t.Setenv("TICKETROUTER_CORPUS", "")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Dir(), filepath.Join(root, "..", "shared", "corpus", "realworld"); got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}
}
