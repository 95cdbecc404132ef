//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package broker

import "os"

// tryLock does not lock where flock is missing: the store directory is
// then not protected against a second server.
func tryLock(*os.File) error { return nil }
