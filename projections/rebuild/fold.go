package rebuild

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/netkingdom/userstore/domain"
)

// foldRows folds the streams of rows — the select list streamColumns, ordered by (tenant, stream,
// version) — one at a time with the domain's fold (domain.Decode, domain.Fold: what the stores' engine
// does when it loads a stream), and calls emit with each stream's state and its number of events. Memory
// holds one stream. It closes rows. An event the registry cannot decode, or a stream whose versions do
// not run 1, 2, 3, … fails the fold.
func foldRows(rows pgx.Rows, emit func(ref domain.StreamRef, state domain.Aggregate, events int) error) (int64, error) {
	defer rows.Close()
	var (
		cur    domain.StreamRef
		events []domain.Event
		n      int64
	)
	flush := func() error {
		if len(events) == 0 {
			return nil
		}
		state, err := domain.Fold(cur, events)
		if err != nil {
			return fmt.Errorf("rebuild: fold %s stream %s of tenant %s: %w", cur.Type, cur.ID, cur.TenantID, err)
		}
		return emit(cur, state, len(events))
	}
	for rows.Next() {
		var (
			tenantID, streamID uuid.UUID
			streamType         string
			version, position  int64
			eventType          string
			eventVersion       int16
			payload            string
		)
		if err := rows.Scan(&tenantID, &streamID, &streamType, &version, &position, &eventType, &eventVersion, &payload); err != nil {
			return n, translate("read the log", err)
		}
		if len(events) == 0 || tenantID != cur.TenantID || streamID != cur.ID {
			if err := flush(); err != nil {
				return n, err
			}
			cur, events = domain.StreamRef{TenantID: tenantID, Type: domain.StreamType(streamType), ID: streamID}, nil
		}
		if version != int64(len(events))+1 || streamType != string(cur.Type) {
			return n, fmt.Errorf("rebuild: %s stream %s of tenant %s: the event at position %d (a %s at version %d) does not follow version %d",
				cur.Type, cur.ID, cur.TenantID, position, streamType, version, len(events))
		}
		ev, err := domain.Decode(domain.Encoded{Type: eventType, SchemaVersion: int(eventVersion), Payload: []byte(payload)})
		if err != nil {
			return n, fmt.Errorf("rebuild: decode the event at position %d: %w", position, err)
		}
		events = append(events, ev)
		n++
	}
	if err := rows.Err(); err != nil {
		return n, translate("read the log", err)
	}
	return n, flush()
}
