package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// runMbsync drains a fresh copy of the mailbox into a local Maildir with
// mbsync (isync), with its default fsync of every mail or with FSync no.
func (b *bench) runMbsync(ctx context.Context, fsync bool, dir string) (res result) {
	tool := toolMbsync
	if !fsync {
		tool = toolMbsyncNoFsync
	}
	res = result{Tool: tool, Mails: len(b.mb.files), Bytes: b.mb.bytes}
	bin, err := lookPath("mbsync", "/usr/bin/mbsync")
	if err != nil {
		return res.fail(err)
	}
	d, err := b.seedDovecot(ctx, b.mb)
	if err != nil {
		return res.fail(err)
	}
	defer d.Close()

	maildir := filepath.Join(dir, "Maildir")
	if err := os.MkdirAll(maildir, 0o700); err != nil {
		return res.fail(fmt.Errorf("%s: %w", tool, err))
	}
	host, port := splitAddr(d.Addr())
	global := "# mbsync's default: FSync yes (an fsync per mail)\n"
	if !fsync {
		global = "FSync no\n"
	}
	// mbsync 1.4 sends LOGIN in the clear only when AuthMechs names it
	// (and warns); Dovecot allows it on loopback.
	rc := fmt.Sprintf(`%s
IMAPAccount bench
Host %s
Port %s
User %s
Pass %s
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account bench

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel bench
Far :remote:INBOX
Near :local:INBOX
Sync Pull
Create Near
Expunge None
SyncState *
`, global, host, port, d.Username(), d.Password(), maildir, maildir)
	rcPath := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(rcPath, []byte(rc), 0o600); err != nil {
		return res.fail(fmt.Errorf("%s: %w", tool, err))
	}
	b.logf("%s: draining %d mails into %s", tool, len(b.mb.files), maildir)
	cpu := readCPU()
	p, err := b.startChild(tool, filepath.Join(dir, "mbsync.log"), nil, nil, bin, "-c", rcPath, "-a")
	if err != nil {
		return res.fail(err)
	}
	defer p.Kill()
	if err := p.wait(ctx, b.drainTimeout()); err != nil {
		return res.fail(fmt.Errorf("%w:\n%s", err, p.Tail(10)))
	}
	elapsed := time.Since(p.Started())
	res.MachineBusy = cpu.busySince()
	if !p.ProcessState().Success() {
		return res.fail(fmt.Errorf("mbsync: %v:\n%s", p.Err(), p.Tail(10)))
	}
	count, size, err := maildirContents(filepath.Join(maildir, "INBOX"))
	if err != nil {
		return res.fail(err)
	}
	if count != len(b.mb.files) {
		return res.fail(fmt.Errorf("mbsync: the Maildir holds %d mails, want %d:\n%s", count, len(b.mb.files), p.Tail(10)))
	}
	if size != b.mb.bytes {
		res.Notes = append(res.Notes, fmt.Sprintf("its Maildir holds %.1f MB, the mailbox %.1f MB: mbsync stores LF line ends", float64(size)/1e6, float64(b.mb.bytes)/1e6))
	}
	res.Seconds = elapsed.Seconds()
	res.PeakRSSMiB, res.CPUSeconds, res.RSSSource = p.usage()
	res.finish()
	b.logf("%s: %d mails in %.1f s (%.0f mails/s), peak RSS %.1f MiB", tool, count, res.Seconds, res.MailsPerSec, res.PeakRSSMiB)
	return res
}

// maildirContents counts the mails of a Maildir folder (new and cur) and
// their bytes.
func maildirContents(dir string) (count int, size int64, err error) {
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return 0, 0, fmt.Errorf("read maildir: %w", err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return 0, 0, fmt.Errorf("read maildir: %w", err)
			}
			if info.Mode().IsRegular() {
				count++
				size += info.Size()
			}
		}
	}
	return count, size, nil
}
