package config

import (
	"context"
	"fmt"
	"os"
	"time"
)

// WatchFile calls changed each time the file at path has changed (its
// modification time or size) and then held still for one more poll, so
// that a file being written is read once it is whole; it polls every
// interval until ctx ends. A file that cannot be stat'ed is waited for.
// The accounts file is watched this way, by the service and by a desk of
// its own.
func WatchFile(ctx context.Context, path string, every time.Duration, changed func()) {
	stamp := func() string {
		fi, err := os.Stat(path)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	}
	loaded, seen := stamp(), ""
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := stamp()
		if now == loaded || now == "" {
			continue
		}
		if now != seen { // changed since the last poll: let it settle
			seen = now
			continue
		}
		loaded = now
		changed()
	}
}
