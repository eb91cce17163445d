package projectorcmd

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/netkingdom/userstore/projections/rebuild"
)

// progressLogInterval is the longest time between two progress log lines of one phase of a rebuild
// (when stderr is not a terminal); a new phase logs a line at once.
const progressLogInterval = 5 * time.Second

// progressReporter renders the progress of a rebuild: report is rebuild.Opts.Progress (its calls
// never overlap), close ends the rendering once rebuild.Run returned.
type progressReporter interface {
	report(rebuild.Progress)
	close()
}

// phaseTracker follows the progress reports of a rebuild. A report of another phase, or of another
// swap attempt, starts a new phase. Within a phase a report may start a new round — the read model's
// catch-up reports each round's events from 0, with the round's total — whose events add to those of
// the earlier rounds: Done and Total are the phase's.
type phaseTracker struct {
	started bool
	phase   rebuild.Phase
	attempt int
	start   time.Time
	// earlier sums the events of the phase's earlier rounds; done and total are the last report's.
	earlier, done, total int64
}

// starts reports whether p starts a new phase. The audit swap's last catch-up reports no attempt:
// attempt 0 continues the current one.
func (t *phaseTracker) starts(p rebuild.Progress) bool {
	return !t.started || p.Phase != t.phase || (p.Attempt != 0 && p.Attempt != t.attempt)
}

// update folds p, received at now, into the tracker.
func (t *phaseTracker) update(p rebuild.Progress, now time.Time) {
	if t.starts(p) {
		*t = phaseTracker{started: true, phase: p.Phase, attempt: p.Attempt, start: now, done: p.Done, total: p.Total}
		return
	}
	// A new round: the count fell back, or the last round had reached its total and this one has
	// another.
	if p.Done < t.done || (t.total > 0 && t.done >= t.total && p.Total != t.total) {
		t.earlier += t.done
	}
	t.done, t.total = p.Done, p.Total
}

// Done returns the events the phase has folded or projected so far.
func (t *phaseTracker) Done() int64 { return t.earlier + t.done }

// Total returns the estimate of Done at the end of the phase (never below Done); 0 when there is none.
func (t *phaseTracker) Total() int64 {
	if t.total <= 0 {
		return 0
	}
	return t.earlier + max(t.total, t.done)
}

// rate returns the phase's events per second until now.
func (t *phaseTracker) rate(now time.Time) float64 {
	elapsed := now.Sub(t.start).Seconds()
	if elapsed <= 0 {
		return 0
	}
	return float64(t.Done()) / elapsed
}

// eta returns the estimated time until the phase's end at its rate so far; false when there is no
// estimate (no total, or no events yet).
func (t *phaseTracker) eta(now time.Time) (time.Duration, bool) {
	total, rate := t.Total(), t.rate(now)
	if total == 0 || rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(total-t.Done()) / rate * float64(time.Second)).Round(time.Second), true
}

// label names the phase: "copy", or "swap (attempt 2)".
func (t *phaseTracker) label() string {
	if t.attempt > 0 {
		return fmt.Sprintf("%s (attempt %d)", t.phase, t.attempt)
	}
	return string(t.phase)
}

// lineProgress renders a rebuild's progress as log lines: one when a phase starts, then at most one
// every `every` with the events done, the total when there is one, the rate and the estimated time left.
type lineProgress struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	t    phaseTracker
	last time.Time
}

func newLineProgress(log *slog.Logger, now func() time.Time, every time.Duration) *lineProgress {
	return &lineProgress{log: log, now: now, every: every}
}

func (l *lineProgress) report(p rebuild.Progress) {
	now := l.now()
	if l.t.starts(p) {
		l.t.update(p, now)
		l.last = now
		attrs := []any{slog.String("target", p.Target), slog.String("phase", string(p.Phase))}
		if p.Attempt > 0 {
			attrs = append(attrs, slog.Int("attempt", p.Attempt))
		}
		if total := l.t.Total(); total > 0 {
			attrs = append(attrs, slog.Int64("total", total))
		}
		l.log.Info("rebuild: phase", attrs...)
		return
	}
	l.t.update(p, now)
	if now.Sub(l.last) < l.every {
		return
	}
	l.last = now
	attrs := []any{slog.String("target", p.Target), slog.String("phase", string(l.t.phase))}
	if l.t.attempt > 0 {
		attrs = append(attrs, slog.Int("attempt", l.t.attempt))
	}
	attrs = append(attrs, slog.Int64("done", l.t.Done()))
	if total := l.t.Total(); total > 0 {
		attrs = append(attrs, slog.Int64("total", total))
	}
	attrs = append(attrs, slog.Float64("events_per_second", math.Round(l.t.rate(now)*10)/10))
	if eta, ok := l.t.eta(now); ok {
		attrs = append(attrs, slog.String("eta", eta.String()))
	}
	l.log.Info("rebuild: progress", attrs...)
}

func (l *lineProgress) close() {}

// barProgress renders a rebuild's progress on a terminal: a progress bar per phase, with the events
// done of the total, the events per second, the elapsed time and the estimated time left; a spinner
// with the count and the elapsed time for a phase without a total. A phase's bar ends, on a line of its
// own, when the next phase starts.
//
// It is also the log's writer while it renders: a log line is printed above the bar instead of
// through it (at the bar's next redraw).
type barProgress struct {
	w   io.Writer
	now func() time.Time

	// mu guards the fields below: reports come from the rebuild, log lines from any goroutine.
	mu  sync.Mutex
	t   phaseTracker
	bar *progressbar.ProgressBar
	// max is the bar's maximum; -1: a spinner.
	max int64
	// fullWidth: the bar takes the terminal's width (otherwise, a terminal without a size, 20 columns).
	fullWidth bool
}

func newBarProgress(w io.Writer) *barProgress {
	return &barProgress{w: w, now: time.Now, fullWidth: terminalWidth(w) > 0}
}

// terminalWidth returns the width of the terminal w is, or 0 when it is none or has no size (a
// pseudo-terminal without one).
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

func (b *barProgress) report(p rebuild.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.t.starts(p) {
		b.end()
		b.t.update(p, b.now())
		b.begin(p.Target)
	} else {
		b.t.update(p, b.now())
	}
	// A phase keeps the kind of bar its first report chose (a spinner's position is no count); a bar
	// follows its total (never below the count).
	if total := b.t.Total(); b.max > 0 && total > 0 && total != b.max {
		b.bar.ChangeMax64(total)
		b.max = total
	}
	_ = b.bar.Set64(b.t.Done())
}

// begin starts the bar of the tracker's phase: a bar when its first report has a total, a spinner
// otherwise.
func (b *barProgress) begin(target string) {
	b.max = -1
	if total := b.t.Total(); total > 0 {
		b.max = total
	}
	w := b.w
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(target + " " + b.t.label()),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	}
	if b.fullWidth {
		opts = append(opts, progressbar.OptionFullWidth())
	}
	// The copy and the catch-up count events; the swap and the verification mostly wait for locks
	// and queries: their spinner shows the elapsed time only.
	if b.t.phase == rebuild.PhaseCopy || b.t.phase == rebuild.PhaseCatchUp {
		opts = append(opts,
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(b.max > 0), // a spinner: the count alone, not "count/-"
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"))
	}
	b.bar = progressbar.NewOptions64(b.max, opts...)
}

// end ends the current bar at the count the phase reached, which stays on screen.
func (b *barProgress) end() {
	if b.bar == nil {
		return
	}
	if b.max > 0 {
		if done := b.t.Done(); done > 0 {
			b.bar.ChangeMax64(done) // a bar full at the count reached, not at the estimate
		} else {
			b.bar.ChangeMax64(-1)
		}
	}
	_ = b.bar.Finish()
	b.bar = nil
}

func (b *barProgress) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.end()
}

// Write writes a log line: above the bar while one renders.
func (b *barProgress) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		return b.w.Write(p)
	}
	if _, err := progressbar.Bprintf(b.bar, "%s", p); err != nil {
		return 0, err
	}
	return len(p), nil
}
