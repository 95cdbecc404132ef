package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/nats-io/nats.go"
)

// latencyResult is the new-mail latency: from the APPEND's tagged OK (the
// mail is in the mailbox) to the ticket reaching a core NATS subscriber
// of the stream's subjects, which happens when the server stores it,
// about when the publisher gets its ack.
type latencyResult struct {
	// Mode is "idle" (the default: the worker waits in IDLE) or "poll"
	// (imap.idle: false: it polls every PollIntervalMS).
	Mode           string  `json:"mode"`
	Label          string  `json:"label"`
	IMAPIdle       bool    `json:"imap_idle"`
	PollIntervalMS float64 `json:"poll_interval_ms,omitempty"`
	Count          int     `json:"count"`
	latencyStats
	// Notify is Dovecot's part: from the APPEND's OK to the EXISTS an
	// independent IDLE connection receives. AfterNotify is the rest
	// (ticket seen minus EXISTS seen): what ticketrouter itself takes.
	// The IDLE run only.
	Notify      *latencyStats `json:"dovecot_idle_notification,omitempty"`
	AfterNotify *latencyStats `json:"after_notification,omitempty"`
	Negative    int           `json:"negative,omitempty"` // tickets seen before the APPEND's OK (counted as 0)
	PeakRSSMiB  float64       `json:"peak_rss_mib"`
	RSSSource   string        `json:"peak_rss_source"`
	SamplesMS   []float64     `json:"samples_ms"`
	Error       string        `json:"error,omitempty"`
	Notes       []string      `json:"notes,omitempty"`
}

// latencyStats summarises samples.
type latencyStats struct {
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`
}

func summarize(samples []time.Duration) latencyStats {
	if len(samples) == 0 {
		return latencyStats{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum time.Duration
	for _, s := range sorted {
		sum += s
	}
	return latencyStats{
		P50MS: ms(percentile(sorted, 50)), P90MS: ms(percentile(sorted, 90)), P99MS: ms(percentile(sorted, 99)),
		MaxMS: ms(sorted[len(sorted)-1]), MeanMS: ms(sum / time.Duration(len(sorted))),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// idleObserver is an IMAP connection idling on INBOX beside the worker's:
// it timestamps every EXISTS Dovecot sends, to tell Dovecot's share of the
// latency from ticketrouter's.
type idleObserver struct {
	ic     *imapConn
	idle   *imapclient.IdleCommand
	exists chan time.Time
}

func startIdleObserver(addr, user, pass string, timeout time.Duration) (*idleObserver, error) {
	o := &idleObserver{exists: make(chan time.Time, 4096)}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("idle observer: %w", err)
	}
	conn.SetDeadline(time.Now().Add(timeout))
	c := imapclient.New(conn, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case o.exists <- time.Now():
				default:
				}
			}
		},
	}})
	o.ic = &imapConn{c: c, conn: conn}
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("idle observer: greeting: %w", err)
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("idle observer: login: %w", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("idle observer: select: %w", err)
	}
	if o.idle, err = c.Idle(); err != nil {
		c.Close()
		return nil, fmt.Errorf("idle observer: idle: %w", err)
	}
	return o, nil
}

// restart ends IDLE, syncs (NOOP) and idles again: from now on the
// observer is in the state of a worker that has just gone idle, with no
// notification of earlier changes pending in Dovecot.
func (o *idleObserver) restart() error {
	o.ic.within(10 * time.Second)
	defer o.ic.within(time.Hour)
	if err := o.idle.Close(); err != nil {
		return fmt.Errorf("idle observer: done: %w", err)
	}
	if err := o.idle.Wait(); err != nil {
		return fmt.Errorf("idle observer: idle: %w", err)
	}
	if err := o.ic.c.Noop().Wait(); err != nil {
		return fmt.Errorf("idle observer: noop: %w", err)
	}
	var err error
	if o.idle, err = o.ic.c.Idle(); err != nil {
		return fmt.Errorf("idle observer: idle: %w", err)
	}
	o.drain()
	return nil
}

// drain forgets the notifications received so far.
func (o *idleObserver) drain() {
	for {
		select {
		case <-o.exists:
		default:
			return
		}
	}
}

// next returns the time of the next EXISTS, waiting up to timeout.
func (o *idleObserver) next(timeout time.Duration) (time.Time, bool) {
	select {
	case t := <-o.exists:
		return t, true
	case <-time.After(timeout):
		return time.Time{}, false
	}
}

func (o *idleObserver) close() {
	o.ic.within(2 * time.Second)
	o.idle.Close()
	o.idle.Wait()
	o.ic.close()
}

// pollLatencyInterval is imap.poll_interval of the polling latency run.
const pollLatencyInterval = 50 * time.Millisecond

// latencyMode is one latency run's configuration.
type latencyMode struct {
	key   string // the JSON's mode, and the work directory's suffix
	label string // the output's heading
	short string // progress lines'
	set   trSettings
}

// latencyModes are the latency runs, in order: the default (IDLE, with
// Dovecot's notification measured beside it), then imap.idle: false.
func latencyModes() []latencyMode {
	return []latencyMode{
		{key: "idle", label: "IDLE (default)", short: "IDLE"},
		{key: "poll", label: fmt.Sprintf("polling every %d ms (imap.idle: false)", pollLatencyInterval.Milliseconds()),
			short: "poll " + pollLatencyInterval.String(), set: trSettings{noIdle: true, pollInterval: pollLatencyInterval}},
	}
}

// noNotify marks a mail the IDLE observer heard nothing of.
const noNotify = time.Duration(-1 << 63)

// arrival is a ticket seen by the subscriber.
type arrival struct {
	messageID string
	at        time.Time
}

// runLatency measures new-mail latency on an idle worker, with a fresh
// Dovecot and a fresh ticketrouter configured as mode says. With IDLE, an
// independent IDLE connection splits each latency into Dovecot's
// notification and ticketrouter's work after it.
func (b *bench) runLatency(ctx context.Context, mode latencyMode) (res latencyResult) {
	res.Mode, res.Label, res.IMAPIdle = mode.key, mode.label, !mode.set.noIdle
	if mode.set.noIdle {
		res.PollIntervalMS = ms(mode.set.pollInterval)
	}
	logf := func(format string, args ...any) {
		b.logf("latency (%s): "+format, append([]any{mode.short}, args...)...)
	}
	fail := func(err error) latencyResult {
		res.Error = err.Error()
		logf("FAILED: %v", err)
		return res
	}
	d, err := b.seedDovecot(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	tr, err := b.startTicketrouter(ctx, filepath.Join(b.work, "latency-"+mode.key), d, mode.set)
	if err != nil {
		return fail(err)
	}
	defer tr.proc.Stop(time.Minute)
	if err := tr.waitReady(ctx, time.Minute); err != nil {
		return fail(err)
	}
	nc, err := nats.Connect(tr.natsURL, nats.Timeout(5*time.Second), nats.Name("ticketrouter bench latency"))
	if err != nil {
		return fail(fmt.Errorf("connect to the embedded NATS: %w", err))
	}
	defer nc.Close()
	arrivals := make(chan arrival, 4096)
	sub, err := nc.Subscribe(subjectPrefix+".>", func(m *nats.Msg) {
		at := time.Now()
		var t struct {
			MessageID string `json:"message_id"`
		}
		if json.Unmarshal(m.Data, &t) == nil {
			select {
			case arrivals <- arrival{t.MessageID, at}:
			default: // nobody waits for so many: dropped
			}
		}
	})
	if err != nil {
		return fail(fmt.Errorf("subscribe: %w", err))
	}
	defer sub.Unsubscribe()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return fail(fmt.Errorf("subscribe: %w", err))
	}
	ic, err := dialIMAP(d.Addr(), d.Username(), d.Password(), time.Minute)
	if err != nil {
		return fail(err)
	}
	defer ic.close()
	var obs *idleObserver // nil when polling: Dovecot's notification plays no part
	if !mode.set.noIdle {
		if obs, err = startIdleObserver(d.Addr(), d.Username(), d.Password(), time.Hour); err != nil {
			return fail(err)
		}
		defer obs.close()
	}

	// deliver APPENDs one mail and waits for its ticket: the latency, and
	// when the observer heard of the mail (noNotify if it did not, or
	// there is no observer; it may be negative: before the APPEND's OK
	// was read). Then it waits until the worker has moved the mail, and
	// restarts the observer's IDLE, so that both idle afresh when the next
	// mail comes.
	deliver := func(raw []byte, messageID string) (time.Duration, time.Duration, error) {
		if obs != nil {
			obs.drain()
		}
		ic.within(time.Minute)
		cmd := ic.c.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			cmd.Close()
			return 0, 0, fmt.Errorf("append %s: %w", messageID, err)
		}
		if err := cmd.Close(); err != nil {
			return 0, 0, fmt.Errorf("append %s: %w", messageID, err)
		}
		if _, err := cmd.Wait(); err != nil {
			return 0, 0, fmt.Errorf("append %s: %w", messageID, err)
		}
		t0 := time.Now()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		for {
			select {
			case a := <-arrivals:
				if a.messageID != messageID {
					continue
				}
				notified := noNotify
				if obs != nil {
					if at, ok := obs.next(2 * time.Second); ok {
						notified = at.Sub(t0)
					}
				}
				if err := waitEmpty(ctx, ic, 10*time.Second); err != nil {
					return 0, 0, fmt.Errorf("after %s: %w", messageID, err)
				}
				if obs != nil {
					if err := obs.restart(); err != nil {
						return 0, 0, err
					}
				}
				return a.at.Sub(t0), notified, nil
			case <-timer.C:
				return 0, 0, fmt.Errorf("no ticket for %s within 10 s of its APPEND; ticketrouter log:\n%s", messageID, tr.proc.Tail(10))
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			}
		}
	}

	// Warm up: the lease taken, the watcher idling, the first publish done.
	for i := range 3 {
		m := b.gen.mail("latwarm", i)
		if _, _, err := deliver(m.raw, m.messageID); err != nil {
			return fail(fmt.Errorf("warm-up: %w", err))
		}
	}
	logf("worker idle and warmed up; APPENDing %d mails one at a time", b.opts.latency)
	r := rand.New(rand.NewPCG(b.opts.seed, 0x1a7))
	var samples, notified, after []time.Duration
	missed, early := 0, 0 // mails the observer heard nothing of; heard of before the APPEND's OK
	lastReport := time.Now()
	for i := range b.opts.latency {
		m := b.gen.mail("lat", i)
		lat, notify, err := deliver(m.raw, m.messageID)
		if err != nil {
			return fail(err)
		}
		if lat < 0 {
			res.Negative++
			lat = 0
		}
		samples = append(samples, lat)
		switch {
		case obs == nil:
		case notify == noNotify:
			missed++
		case notify <= 0:
			early++
		default:
			notified = append(notified, notify)
			after = append(after, lat-notify)
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			logf("%d/%d mails", i+1, b.opts.latency)
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(time.Duration(r.IntN(21)) * time.Millisecond):
		}
	}
	if err := tr.stop(); err != nil {
		res.Notes = append(res.Notes, "stop: "+err.Error())
	}
	res.PeakRSSMiB, _, res.RSSSource = tr.proc.usage()
	res.Count = len(samples)
	res.latencyStats = summarize(samples)
	for _, s := range samples {
		res.SamplesMS = append(res.SamplesMS, ms(s))
	}
	if len(notified) > 0 {
		n, a := summarize(notified), summarize(after)
		res.Notify, res.AfterNotify = &n, &a
	}
	if missed > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("the IDLE observer heard no EXISTS for %d mails: ticketrouter had moved them before "+
			"the observer's own 500 ms timer ran out, so Dovecot had nothing to announce (left out of the split)", missed))
	}
	if early > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("for %d mails the IDLE observer's EXISTS came before the APPEND's OK (a change just before "+
			"the APPEND had started Dovecot's 500 ms delay already); left out of the split", early))
	}
	logf("%d mails: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms", res.Count, res.P50MS, res.P90MS, res.P99MS, res.MaxMS)
	if res.Notify != nil {
		logf("of which Dovecot's IDLE notification p50 %.1f ms, p99 %.1f ms; ticketrouter after it p50 %.1f ms, p99 %.1f ms",
			res.Notify.P50MS, res.Notify.P99MS, res.AfterNotify.P50MS, res.AfterNotify.P99MS)
	}
	return res
}

// waitEmpty waits until INBOX is empty: the worker has moved the mail.
func waitEmpty(ctx context.Context, ic *imapConn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := ic.messages("INBOX")
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("INBOX still holds %d mails %v after the ticket", n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// percentile returns the p-th percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}
