package projections

import (
	"context"
	"time"

	"github.com/netkingdom/userstore/eventstore"
)

// StatusResult reports how far each of a Runner's projections is behind the log.
type StatusResult struct {
	Projections []ProjectionStatus
}

// ProjectionStatus is the lag of one projection: the sums and maxima over its partitions.
type ProjectionStatus struct {
	Name    string
	Version int
	// EventsBehind counts the committed events not yet processed, over all partitions.
	EventsBehind int64
	// Behind is the age of the oldest event not yet processed (now − its recorded_at), over all
	// partitions; zero when the projection is caught up.
	Behind time.Duration
	// Parked counts the parked dead letters.
	Parked int64
	// Partitions holds the status of each partition, by partition.
	Partitions []PartitionStatus
}

// PartitionStatus is the lag of one projection on one partition.
type PartitionStatus struct {
	Partition int16
	// Checkpoint is the cursor of the last event processed (zero: none yet).
	Checkpoint eventstore.Cursor
	// Processed counts the events processed (applied or parked) since the checkpoint was created.
	Processed int64
	// UpdatedAt is when the checkpoint last moved; zero when there is none yet.
	UpdatedAt time.Time
	// EventsBehind counts the partition's committed events after the checkpoint — including those
	// still above the log's horizon, which a batch cannot read yet.
	EventsBehind int64
	// Behind is the age of the first of them (now − recorded_at), zero when there is none.
	Behind time.Duration
	// Parked counts the partition's parked dead letters.
	Parked int64
}

// Status reports the lag of every projection of the Runner, per partition: events behind and seconds
// behind (the age of the oldest event not yet processed), and parked dead letters — the metrics of the
// projector process. Counting costs O(lag): call it at scrape intervals, not per event.
func (r *Runner) Status(ctx context.Context) (*StatusResult, error) {
	res := &StatusResult{}
	for _, rp := range r.projs {
		ps := ProjectionStatus{Name: rp.name, Version: rp.version, Partitions: make([]PartitionStatus, 0, eventstore.Partitions)}
		rows, err := r.pool.Query(ctx, sqlStatus, rp.name, rp.version, eventstore.Partitions)
		if err != nil {
			return nil, translate("status", err)
		}
		for rows.Next() {
			var (
				p       PartitionStatus
				xid     string
				updated *time.Time
				age     *float64
			)
			if err := rows.Scan(&p.Partition, &xid, &p.Checkpoint.Position, &p.Processed, &updated,
				&p.EventsBehind, &age, &p.Parked); err != nil {
				rows.Close()
				return nil, translate("status", err)
			}
			if p.Checkpoint.TransactionID, err = parseXid(xid); err != nil {
				rows.Close()
				return nil, err
			}
			if updated != nil {
				p.UpdatedAt = *updated
			}
			if age != nil {
				p.Behind = max(0, time.Duration(*age*float64(time.Second)))
			}
			ps.EventsBehind += p.EventsBehind
			ps.Behind = max(ps.Behind, p.Behind)
			ps.Parked += p.Parked
			ps.Partitions = append(ps.Partitions, p)
		}
		if err := rows.Err(); err != nil {
			return nil, translate("status", err)
		}
		res.Projections = append(res.Projections, ps)
	}
	return res, nil
}
