package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// storeLockFile is the file in the embedded server's store directory
// whose lock the running server holds. It stays when the server stops:
// removing it would let a process that opened it already lock a file no
// longer in the directory.
const storeLockFile = "ticketrouter.lock"

// StoreInUseError is StartEmbedded's error when another process holds the
// store directory: two servers writing one JetStream store corrupt it.
type StoreInUseError struct {
	Dir string
	// Holder is what the holder wrote in the lock file; zero when it
	// wrote nothing yet, or is not a ticketrouter.
	Holder StoreHolder
}

// StoreHolder identifies the process holding a store directory.
type StoreHolder struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host"`
	Since time.Time `json:"since"`
}

func (e *StoreInUseError) Error() string {
	who := "another process"
	if h := e.Holder; h.PID > 0 {
		who = fmt.Sprintf("another ticketrouter (pid %d on host %s, since %s)", h.PID, h.Host, h.Since.Format(time.RFC3339))
	}
	return fmt.Sprintf("embedded NATS: store directory %s is in use by %s: two servers must not share a store; stop it, or give this one its own nats.embedded.store_dir", e.Dir, who)
}

// errLocked is what tryLock returns when another open file holds the lock.
var errLocked = errors.New("locked")

// storeLock is the lock of a store directory, held while its file is open.
type storeLock struct {
	f    *os.File
	once sync.Once
}

// lockStore takes the lock of store directory dir, without waiting, and
// writes who holds it into the lock file.
func lockStore(dir string) (*storeLock, error) {
	path := filepath.Join(dir, storeLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: lock the store directory: %w", err)
	}
	if err := tryLock(f); err != nil {
		defer f.Close()
		if errors.Is(err, errLocked) {
			e := &StoreInUseError{Dir: dir}
			if b, rerr := io.ReadAll(io.LimitReader(f, 4096)); rerr == nil {
				_ = json.Unmarshal(b, &e.Holder) // a holder that wrote nothing is still named
			}
			return nil, e
		}
		return nil, fmt.Errorf("embedded NATS: lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(StoreHolder{PID: os.Getpid(), Host: host, Since: time.Now().UTC().Truncate(time.Second)})
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(append(b, '\n'), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("embedded NATS: write %s: %w", path, err)
	}
	return &storeLock{f: f}, nil
}

// release gives the lock up; later calls do nothing.
func (l *storeLock) release() {
	l.once.Do(func() { l.f.Close() }) // closing the file releases its lock
}
