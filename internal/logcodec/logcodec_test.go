package logcodec_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/netkingdom/userstore"
	"github.com/netkingdom/userstore/domain"
	"github.com/netkingdom/userstore/eventstore"
	"github.com/netkingdom/userstore/internal/logcodec"
)

func TestMetadataRoundTrip(t *testing.T) {
	m := domain.Metadata{
		Actor:          userstore.Actor{Type: userstore.ActorUser, ID: "u-1"},
		RequestID:      "req-1",
		IdempotencyKey: "key-1",
		Command:        "CreateUser",
		CorrelationID:  uuid.New(),
		CausationID:    uuid.New(),
	}
	got := logcodec.DomainMetadata(logcodec.StoreMetadata(m))
	require.Equal(t, m, got)
	require.Equal(t, domain.Metadata{}, logcodec.DomainMetadata(logcodec.StoreMetadata(domain.Metadata{})))
	require.Equal(t, eventstore.Metadata{}, logcodec.StoreMetadata(domain.Metadata{}))
}

func TestRecorded(t *testing.T) {
	tenant, user := uuid.New(), uuid.New()
	at := time.Now().UTC().Truncate(time.Microsecond)
	ev := domain.UserCreated{UserID: user, TenantID: tenant, DisplayName: "A", Email: "a@example.com", At: at}
	enc, err := domain.Encode(ev)
	require.NoError(t, err)
	stored := &eventstore.RecordedEvent{
		GlobalPosition: 42, TransactionID: 7, TenantID: tenant, StreamType: "user", StreamID: user, StreamVersion: 1,
		EventID: uuid.New(), EventType: enc.Type, EventVersion: int16(enc.SchemaVersion), Payload: enc.Payload,
		Metadata: eventstore.Metadata{ActorType: "service", ActorID: "svc", RequestID: "r", Command: "CreateUser"},
	}
	r, err := logcodec.Recorded(stored)
	require.NoError(t, err)
	require.Equal(t, domain.Recorded{
		Stream:   domain.StreamRef{TenantID: tenant, Type: domain.StreamUser, ID: user},
		Version:  1,
		EventID:  stored.EventID,
		Position: 42,
		Event:    ev,
		Metadata: domain.Metadata{Actor: userstore.Actor{Type: userstore.ActorService, ID: "svc"}, RequestID: "r", Command: "CreateUser"},
	}, r)

	stored.EventType = "no.such"
	_, err = logcodec.Recorded(stored)
	require.True(t, errors.Is(err, domain.ErrUnknownEventType))
}
