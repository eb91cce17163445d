// Package jetstream is the outbox relay's NATS JetStream sink (DESIGN §6, ADR 0008): a projection of
// the event log, "outbox.jetstream", with checkpoints of its own, that publishes every event's public
// integration event — the watermill message of outbox.Message, unchanged — to a JetStream stream through
// watermill-nats v2's Publisher (pkg/nats, JetStream on, TrackMsgId).
//
// Delivery is AT LEAST ONCE, with broker dedupe; it is not exactly once. A batch's Flush publishes the
// batch's messages one after the other, each waiting for the stream's acknowledgement, and only then
// does the runtime advance the checkpoint, in the batch transaction. If anything fails between a
// publish and that commit (NATS down, a timeout, a crash, a lost database connection), the batch is
// published again from the same checkpoint. Every message carries Nats-Msg-Id = its UUID = the event id,
// so JetStream drops the second copy when it comes within the stream's duplicate window
// (Config.DuplicateWindow, 2 minutes by default); after it, the stream holds both, and consumers must
// dedupe by the event id. The exactly-once handoff of the default sink (projections/outbox: rows and
// checkpoint in one transaction) is not possible over a network.
//
// A message on the stream is:
//
//	subject   Config.Subject (default "userstore.events")
//	headers   Nats-Msg-Id and _watermill_message_uuid: the event id;
//	          tenant_id, aggregate_type, aggregate_id, aggregate_version, type, position, occurred_at
//	          (the metadata of outbox.Message, under the same keys); Nats-Expected-Stream
//	data      the public event's JSON body
//
// A watermill-nats Subscriber with its default NATSMarshaler reads it back as the same watermill
// message (UUID, metadata, payload); see docs/outbox.md.
//
// Order: a tenant's events all live in one partition of the log, which the runtime processes one batch
// at a time in the log's order, and Flush publishes a batch's messages one at a time in that order, so
// each aggregate's messages are stored in version order. A republished batch is dropped as duplicates
// within the window and does not reorder anything; beyond the window its copies come after later
// messages, and a consumer recognizes them by event id (or by aggregate_version).
//
// When NATS is down, every batch of the relay fails at its first message (the connection does not
// buffer while it reconnects), its transaction rolls back, its checkpoint stays, and the runner tries
// the partition again after its backoff; other projections, and the relay's other partitions once NATS
// answers, are not held up. The connection reconnects by itself, and the relay resumes from its
// checkpoints: nothing is lost.
//
// The stream must exist and capture the subject (an operator's stream, with the retention, storage and
// replicas the deployment needs), or Config.CreateStream lets Connect create a simple one. Connect
// checks it once; the relay never provisions streams per publish (watermill's AutoProvision would name
// the stream after the subject — no dots allowed — with the server's default settings).
//
//	relay, err := jetstream.Connect(ctx, &jetstream.Config{URL: natsURL, CreateStream: true})
//	defer relay.Close()
//	runner, err := projections.New(projectorPool, projectorStore, []projections.Projection{relay}, nil)
//
// An event the domain cannot decode (or has no public form of) is parked as a dead letter of its tenant
// by the runtime, like any projection error of Apply.
package jetstream
