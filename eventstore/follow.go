package eventstore

import (
	"context"
	"fmt"
	"time"
)

// FollowFunc handles one batch of events, in log order. Returning an error stops Follow, which
// returns it; the batch is then not acknowledged (a new Follow from the last acknowledged cursor
// delivers it again).
type FollowFunc func(ctx context.Context, events []RecordedEvent) error

// Follow delivers the log — or one partition, or one tenant — to handle, batch by batch in
// (transaction id, global position) order, from params.After on, and then every event committed
// later, until ctx ends or handle fails. It runs on the caller's goroutine and starts none.
//
// Delivery is exactly the order and completeness of ReadAll: nothing is skipped or repeated, and an
// event is delivered once every transaction older than its own has ended (see Horizon). Follow polls
// with adaptive backoff — Config.PollIntervalMin after a poll that found nothing, doubling up to
// Config.PollIntervalMax — and is woken at once by this Store's Append or Notify. The write path
// sends no NOTIFY.
//
// Follow returns ctx.Err() when ctx ends, the handler's error (wrapped), or a read error.
func (s *Store) Follow(ctx context.Context, params *FollowParams, handle FollowFunc) error {
	if params == nil {
		params = &FollowParams{}
	}
	if handle == nil {
		return invalid("handle", "must not be nil")
	}
	batchSize := params.BatchSize
	switch {
	case batchSize < 0 || batchSize > ReadLimitMax:
		return invalid("BatchSize", "must be between 0 and %d, got %d", ReadLimitMax, batchSize)
	case batchSize == 0:
		batchSize = ReadLimitDefault
	}
	read := &ReadAllParams{
		After:     params.After,
		Partition: params.Partition,
		TenantID:  params.TenantID,
		Limit:     batchSize,
	}
	delay := s.cfg.PollIntervalMin
	for {
		// Take the wake-up channel before polling, so an append that commits during the poll
		// triggers another poll instead of being missed.
		woken := s.wake.wait()

		res, err := s.readAll(ctx, s.pool, read)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if len(res.Events) > 0 {
			if err := handle(ctx, res.Events); err != nil {
				return fmt.Errorf("eventstore: follow: handler: %w", err)
			}
			read.After = res.Next
			delay = s.cfg.PollIntervalMin
			if len(res.Events) == batchSize {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				continue // more is probably waiting
			}
		}
		if params.CaughtUpFunc != nil {
			params.CaughtUpFunc(read.After)
		}

		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-woken:
			timer.Stop()
			delay = s.cfg.PollIntervalMin
		case <-timer.C:
			delay = min(2*delay, s.cfg.PollIntervalMax)
		}
	}
}
