package agents

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrBadCredentials is the one answer to a login that fails: an unknown
// agent, a disabled one, one without a password and a wrong password all
// get it, after the same work.
var ErrBadCredentials = errors.New("wrong agent name or password")

// Directory is the agents file as the desk uses it: agents by name, with
// their password hashes, reloaded when the file changes (Reload, Watch).
// It is safe for concurrent use.
type Directory struct {
	path  string
	dummy *hash // verified against when there is no agent, so that it takes as long
	// verifying bounds the argon2id verifications at once (each takes
	// 19 MiB and a core for 0.1 s), so that a flood of logins cannot
	// exhaust the desk's memory.
	verifying chan struct{}

	mu      sync.RWMutex
	agents  map[string]*known
	loaded  [sha256.Size]byte // the content in use
	entries int
}

// known is an agent of the directory with its parsed hash (nil: no
// password, so no password login).
type known struct {
	agent *Agent
	hash  *hash
}

// LoadDirectory loads the agents file at path. Unlike OpenFile, a file
// that does not exist is an error: a desk without agents is a mistake.
func LoadDirectory(path string) (*Directory, error) {
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	dummy, err := HashPassword(string(pw), DefaultParams())
	if err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	d := &Directory{path: path, verifying: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))}
	if d.dummy, err = parseHash(dummy); err != nil {
		return nil, fmt.Errorf("load agents: %w", err)
	}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the agents file's path.
func (d *Directory) Path() string { return d.path }

// Reload reads the file again and, when it is valid, uses it from now
// on. When it is not, the agents in use stay, and the error says why.
func (d *Directory) Reload() error {
	data, err := os.ReadFile(d.path)
	if err != nil {
		return fmt.Errorf("load agents: %w", err)
	}
	sum := sha256.Sum256(data)
	d.mu.RLock()
	same := sum == d.loaded && d.agents != nil
	d.mu.RUnlock()
	if same {
		return nil
	}
	entries, err := parseFile(data, nil)
	if err != nil {
		return fmt.Errorf("load agents file %s: %w", d.path, err)
	}
	agents := make(map[string]*known, len(entries))
	for _, e := range entries {
		k := &known{agent: e.agent().clone()}
		if e.Password != "" {
			if k.hash, err = parseHash(e.Password); err != nil { // parseFile checked it
				return fmt.Errorf("load agents file %s: agent %q: password: %w", d.path, e.Name, err)
			}
		}
		agents[e.Name] = k
	}
	d.mu.Lock()
	d.agents, d.loaded, d.entries = agents, sum, len(entries)
	d.mu.Unlock()
	return nil
}

// Watch reloads the file every interval until ctx ends, so that an agent
// added, disabled or given a new password counts without a restart. A
// file that cannot be read or is not valid is reported to onError (when
// not nil) once, not at every tick, and the agents in use stay.
func (d *Directory) Watch(ctx context.Context, every time.Duration, onError func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := d.Reload()
		switch {
		case err == nil:
			last = ""
		case err.Error() != last && onError != nil:
			last = err.Error()
			onError(err)
		}
	}
}

// Len is the number of agents.
func (d *Directory) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.entries
}

// Agents returns copies of every agent, enabled or not, by name: for a
// supervisor's choice of whom to reassign a ticket to.
func (d *Directory) Agents() []Agent {
	d.mu.RLock()
	out := make([]Agent, 0, len(d.agents))
	for _, k := range d.agents {
		out = append(out, *k.agent.clone())
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(a, b Agent) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Lookup returns a copy of agent name (enabled or not), or false. Names
// are matched without regard to case or surrounding space.
func (d *Directory) Lookup(name string) (*Agent, bool) {
	d.mu.RLock()
	k := d.agents[normalize(name)]
	d.mu.RUnlock()
	if k == nil {
		return nil, false
	}
	return k.agent.clone(), true
}

// Authenticate returns agent name when password is its password and it
// is enabled. Otherwise it returns ErrBadCredentials, having done the
// same work (an argon2id verification, against a dummy hash when there is
// no agent of that name): the time taken does not tell which names exist.
// Verifications run at most GOMAXPROCS at once; waiting for a turn ends
// with ctx.
func (d *Directory) Authenticate(ctx context.Context, name, password string) (*Agent, error) {
	select {
	case d.verifying <- struct{}{}:
		defer func() { <-d.verifying }()
	case <-ctx.Done():
		return nil, fmt.Errorf("authenticate: %w", ctx.Err())
	}
	d.mu.RLock()
	k := d.agents[normalize(name)]
	d.mu.RUnlock()
	h, usable := d.dummy, false
	if k != nil && k.hash != nil && !k.agent.Disabled {
		h, usable = k.hash, true
	}
	if len(password) > MaxPasswordLength {
		password, usable = password[:MaxPasswordLength], false
	}
	if ok := h.verify(password); !ok || !usable {
		return nil, ErrBadCredentials
	}
	return k.agent.clone(), nil
}

// normalize is the form of a login name that is looked up.
func normalize(name string) string { return strings.ToLower(strings.TrimSpace(name)) }
