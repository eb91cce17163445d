package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/netkingdom/userstore"
)

// AuditGenesisHash is the PrevHash of a tenant's first audit record: 64 zeros.
var AuditGenesisHash = strings.Repeat("0", 64)

// auditEncodingVersion is the first field of the canonical encoding, so that a future encoding can be
// told apart.
const auditEncodingVersion = "userstore.audit.v1"

// auditTimeLayout renders OccurredAt in the canonical encoding: UTC with exactly six fractional digits,
// the precision every implementation keeps.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// Audit returns the audit record of a recorded event, without its place in the chain (Sequence,
// PrevHash and Hash; see ChainAudit): the actor and request id of the mutation, the event type as the
// action, the time the event occurred, and the aggregate as the target — except for roster events,
// whose target is the user whose membership changed (TargetType "user").
func Audit(r Recorded) userstore.AuditRecord {
	rec := userstore.AuditRecord{
		TenantID:   r.Stream.TenantID,
		EventID:    r.EventID,
		Position:   r.Position,
		Actor:      r.Metadata.Actor,
		RequestID:  r.Metadata.RequestID,
		Outcome:    userstore.OutcomeSuccess,
		TargetType: string(r.Stream.Type),
		TargetID:   r.Stream.ID,
	}
	if r.Event != nil {
		rec.Action = r.Event.EventType()
		rec.OccurredAt = r.Event.OccurredAt().UTC()
		if u, ok := RosterUser(r.Event); ok {
			rec.TargetType, rec.TargetID = string(StreamUser), u
		}
	}
	return rec
}

// ChainAudit appends rec to a tenant's chain whose last record has sequence prevSeq and hash prevHash
// (0 and AuditGenesisHash for the first record): it sets rec's Sequence, PrevHash and Hash.
func ChainAudit(rec *userstore.AuditRecord, prevSeq int64, prevHash string) error {
	rec.Sequence = prevSeq + 1
	rec.PrevHash = prevHash
	h, err := AuditHash(prevHash, rec)
	if err != nil {
		return err
	}
	rec.Hash = h
	return nil
}

// AuditHash returns the hash of an audit record: lower-case hex of
// sha256(prevHash bytes ‖ AuditCanonical(rec)), where prevHash bytes are the 32 bytes the 64 hex digits
// of prevHash encode. rec's own PrevHash and Hash fields are not part of it.
func AuditHash(prevHash string, rec *userstore.AuditRecord) (string, error) {
	prev, err := hex.DecodeString(prevHash)
	if err != nil || len(prev) != sha256.Size {
		return "", errors.New("domain: audit prev hash must be 64 hex digits")
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(AuditCanonical(rec))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AuditCanonical returns the canonical encoding of an audit record, the stable input of its hash. It is
// a sequence of fields, each written as its length in bytes (4 bytes, big-endian) followed by its UTF-8
// bytes, in this order:
//
//	 1  "userstore.audit.v1"
//	 2  tenant id      canonical lower-case UUID (36 characters)
//	 3  sequence       decimal
//	 4  event id       canonical UUID
//	 5  position       decimal
//	 6  occurred at    UTC, "2006-01-02T15:04:05.000000Z" (microseconds)
//	 7  actor type
//	 8  actor id
//	 9  action
//	10  target type
//	11  target id      canonical UUID
//	12  request id     (empty when none)
//	13  outcome
//
// Changing it breaks every stored chain: a new encoding needs a new version string.
func AuditCanonical(rec *userstore.AuditRecord) []byte {
	fields := [...]string{
		auditEncodingVersion,
		rec.TenantID.String(),
		strconv.FormatInt(rec.Sequence, 10),
		rec.EventID.String(),
		strconv.FormatInt(rec.Position, 10),
		rec.OccurredAt.UTC().Truncate(time.Microsecond).Format(auditTimeLayout),
		string(rec.Actor.Type),
		rec.Actor.ID,
		rec.Action,
		rec.TargetType,
		rec.TargetID.String(),
		rec.RequestID,
		rec.Outcome,
	}
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// VerifyAuditChain checks a tenant's audit records from the first one on: gapless sequences from 1,
// each PrevHash equal to the previous Hash (the genesis hash first) and each Hash recomputed. It returns
// the index of the first broken record and an error saying why, or -1 and nil.
func VerifyAuditChain(recs []userstore.AuditRecord) (int, error) {
	prevHash := AuditGenesisHash
	for i := range recs {
		r := &recs[i]
		if r.Sequence != int64(i)+1 {
			return i, fmt.Errorf("audit record %d: sequence %d, want %d", i, r.Sequence, i+1)
		}
		if r.PrevHash != prevHash {
			return i, fmt.Errorf("audit record %d: prev hash does not match the previous record's hash", r.Sequence)
		}
		h, err := AuditHash(prevHash, r)
		if err != nil {
			return i, fmt.Errorf("audit record %d: %w", r.Sequence, err)
		}
		if h != r.Hash {
			return i, fmt.Errorf("audit record %d: hash does not match its content", r.Sequence)
		}
		prevHash = r.Hash
	}
	return -1, nil
}
