package agents

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"
)

// File is the agents file, as the agent commands edit it:
//
//	agents:
//	  - name: alice
//	    display: Alice Example
//	    roles: [agent]
//	    colours: [blue, red]
//	    password: $argon2id$v=19$m=19456,t=2,p=1$…$…
//	    disabled: false
//
// Edits keep the file's comments and the order of its agents. Save writes
// it atomically with mode 0600: it holds password hashes.
type File struct {
	path    string
	doc     yaml.Node // the document as read, edited in place
	entries []entry
	read    [sha256.Size]byte // the content read, to notice another writer
}

// entry is one agent of the file.
type entry struct {
	Name     string   `yaml:"name"`
	Display  string   `yaml:"display,omitempty"`
	Roles    []string `yaml:"roles,flow"`
	Colours  []string `yaml:"colours,flow,omitempty"`
	Password string   `yaml:"password,omitempty"`
	Disabled bool     `yaml:"disabled,omitempty"`
}

func (e *entry) agent() *Agent {
	return &Agent{Name: e.Name, Display: e.Display, Roles: e.Roles, Colours: e.Colours, Disabled: e.Disabled}
}

// fileHeader heads a new agents file.
const fileHeader = "ticketrouter agents: managed by 'ticketrouter agent add|passwd|disable'.\nIt holds password hashes: keep it private (mode 0600)."

// ErrNoAgent is the error of an edit naming an agent the file does not
// have.
var ErrNoAgent = errors.New("no such agent")

// OpenFile reads the agents file at path; a file that does not exist is
// an empty one, created by Save.
func OpenFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("agents file: %w", err)
	}
	f := &File{path: path, read: sha256.Sum256(data)}
	if f.entries, err = parseFile(data, &f.doc); err != nil {
		return nil, fmt.Errorf("agents file %s: %w", path, err)
	}
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Agents returns the file's agents, in its order.
func (f *File) Agents() []Agent {
	out := make([]Agent, 0, len(f.entries))
	for _, e := range f.entries {
		out = append(out, *e.agent().clone())
	}
	return out
}

// Has reports whether the file has agent name.
func (f *File) Has(name string) bool { return f.find(name) >= 0 }

// Add adds agent a with password, hashed with DefaultParams. The name must
// be new; a.Disabled is kept.
func (f *File) Add(a Agent, password string) error {
	if err := a.Check(); err != nil {
		return fmt.Errorf("add agent: %w", err)
	}
	if f.find(a.Name) >= 0 {
		return fmt.Errorf("add agent %q: the file already has it", a.Name)
	}
	h, err := hashNew(password)
	if err != nil {
		return fmt.Errorf("add agent %q: %w", a.Name, err)
	}
	e := entry{Name: a.Name, Display: a.Display, Roles: slices.Clone(a.Roles), Colours: slices.Clone(a.Colours), Password: h, Disabled: a.Disabled}
	var n yaml.Node
	if err := n.Encode(&e); err != nil {
		return fmt.Errorf("add agent %q: %w", a.Name, err)
	}
	seq := f.sequence()
	seq.Content = append(seq.Content, &n)
	f.entries = append(f.entries, e)
	return nil
}

// SetPassword replaces the password of agent name.
func (f *File) SetPassword(name, password string) error {
	i := f.find(name)
	if i < 0 {
		return fmt.Errorf("set password of %q: %w", name, ErrNoAgent)
	}
	h, err := hashNew(password)
	if err != nil {
		return fmt.Errorf("set password of %q: %w", name, err)
	}
	f.entries[i].Password = h
	return f.set(i, "password", h)
}

// Disable disables agent name: it can no longer log in, and its sessions
// end at their next request.
func (f *File) Disable(name string) error { return f.setDisabled(name, true) }

// Enable enables agent name again.
func (f *File) Enable(name string) error { return f.setDisabled(name, false) }

func (f *File) setDisabled(name string, disabled bool) error {
	i := f.find(name)
	if i < 0 {
		return fmt.Errorf("set disabled of %q: %w", name, ErrNoAgent)
	}
	f.entries[i].Disabled = disabled
	return f.set(i, "disabled", disabled)
}

// ErrChanged is the error of a Save when the file changed on disk since
// it was read: another edit, whose change Save would lose.
var ErrChanged = errors.New("the file changed since it was read; run the command again")

// Save writes the file atomically (a temporary file in the same
// directory, synced, then renamed over it) with mode 0600. Through a
// symbolic link, the link's target is replaced. When the file changed
// since it was read, Save writes nothing and returns ErrChanged.
func (f *File) Save() error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&f.doc); err != nil {
		return fmt.Errorf("save agents file %s: %w", f.path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("save agents file %s: %w", f.path, err)
	}
	path := f.path
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	now, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save agents file %s: %w", f.path, err)
	}
	if sha256.Sum256(now) != f.read {
		return fmt.Errorf("save agents file %s: %w", f.path, ErrChanged)
	}
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("save agents file %s: %w", f.path, err)
	}
	f.read = sha256.Sum256(buf.Bytes())
	return nil
}

// hashNew checks password and hashes it with DefaultParams.
func hashNew(password string) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	return HashPassword(password, DefaultParams())
}

// find returns the index of agent name, or -1.
func (f *File) find(name string) int {
	return slices.IndexFunc(f.entries, func(e entry) bool { return e.Name == name })
}

// sequence returns the node of the agents list, making the document
// when the file was empty.
func (f *File) sequence() *yaml.Node {
	if f.doc.Kind != yaml.DocumentNode || len(f.doc.Content) == 0 {
		f.doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, HeadComment: fileHeader}}}
	}
	root := f.doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "agents" {
			seq := root.Content[i+1]
			if seq.Kind != yaml.SequenceNode { // agents: (null)
				*seq = yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			}
			seq.Style = 0
			return seq
		}
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "agents"}, seq)
	return seq
}

// set sets key of the i-th agent's node to value, keeping the key's
// comments.
func (f *File) set(i int, key string, value any) error {
	m := f.sequence().Content[i]
	var v yaml.Node
	if err := v.Encode(value); err != nil {
		return fmt.Errorf("set %s of %q: %w", key, f.entries[i].Name, err)
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			v.LineComment = m.Content[j+1].LineComment
			*m.Content[j+1] = v
			return nil
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, &v)
	return nil
}

// quoted matches the values that yaml's type errors quote, which could be
// a password hash put in the wrong place.
var quoted = regexp.MustCompile("`[^`]*`")

// parseFile parses and checks the agents file's data into its entries,
// and into doc when it is not nil. Its errors name the agent and field, never a password hash.
func parseFile(data []byte, doc *yaml.Node) ([]entry, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var file struct {
		Agents []entry `yaml:"agents"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return nil, errors.New(quoted.ReplaceAllLiteralString(err.Error(), "`…`"))
	}
	if doc != nil {
		if err := yaml.Unmarshal(data, doc); err != nil {
			return nil, errors.New(quoted.ReplaceAllLiteralString(err.Error(), "`…`"))
		}
	}
	seen := make(map[string]bool, len(file.Agents))
	for _, e := range file.Agents {
		if err := e.agent().Check(); err != nil {
			return nil, err
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("agent %q is listed twice", e.Name)
		}
		seen[e.Name] = true
		if e.Password != "" {
			if err := CheckHash(e.Password); err != nil {
				return nil, fmt.Errorf("agent %q: password: %w", e.Name, err)
			}
		}
	}
	return file.Agents, nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory, with mode 0600, synced before it is renamed over path.
func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}
