package crashtest

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The model of a versioned stream (eventstore's contract), for porcupine. A stream's state is its
// version and a digest of its event ids in version order; an append names its expected version and
// its events; a read returns the version and the digest of the events it read. The history is
// partitioned by stream: the streams are independent.

// expectKind is an append's optimistic-concurrency condition (eventstore.ExpectedVersion).
type expectKind int8

const (
	expAny expectKind = iota
	expNoStream
	expExists
	expExact
)

// appendInput is an append of events with the given ids to stream Stream.
type appendInput struct {
	Stream  int
	Expect  expectKind
	Version int64 // for expExact
	IDs     []uuid.UUID
}

// admits reports whether the condition holds at version v.
func (in appendInput) admits(v int64) bool {
	switch in.Expect {
	case expAny:
		return true
	case expNoStream:
		return v == 0
	case expExists:
		return v > 0
	case expExact:
		return v == in.Version
	}
	return false
}

func (in appendInput) String() string {
	var cond string
	switch in.Expect {
	case expAny:
		cond = "any"
	case expNoStream:
		cond = "no-stream"
	case expExists:
		cond = "exists"
	case expExact:
		cond = fmt.Sprintf("v%d", in.Version)
	}
	return fmt.Sprintf("s%d.append(%s, %d events)", in.Stream, cond, len(in.IDs))
}

// resultKind classifies an append's return.
type resultKind int8

const (
	// resOK: appended; Version is the new version.
	resOK resultKind = iota
	// resConflict: a *VersionConflictError; nothing was appended.
	resConflict
	// resFailed: an error that promises nothing was appended (ErrUnavailable: nothing reached the
	// server).
	resFailed
	// resUnknown: ErrCommitOutcomeUnknown, or another error after the request may have reached the
	// server: appended or not. The operation is recorded as never returning (Return = +∞), so the
	// checker may place it anywhere after its call — where its condition held, or after everything.
	resUnknown
)

type appendOutput struct {
	Kind    resultKind
	Version int64
}

func (o appendOutput) String() string {
	switch o.Kind {
	case resOK:
		return fmt.Sprintf("ok v%d", o.Version)
	case resConflict:
		return "conflict"
	case resFailed:
		return "failed"
	}
	return "unknown"
}

// readInput is a read of stream Stream.
type readInput struct{ Stream int }

type readOutput struct {
	Version int64
	Digest  uint64
}

// streamState is the model's state of one stream.
type streamState struct {
	Version int64
	Digest  uint64
}

func (s streamState) String() string { return fmt.Sprintf("v%d #%04x", s.Version, s.Digest&0xffff) }

// with returns the state after appending events with ids.
func (s streamState) with(ids []uuid.UUID) streamState {
	for _, id := range ids {
		s.Digest = chain(s.Digest, id)
		s.Version++
	}
	return s
}

// chain extends a digest by one event id.
func chain(d uint64, id uuid.UUID) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], d)
	h.Write(b[:])
	h.Write(id[:])
	return h.Sum64()
}

// pending is the Return time of an operation that never returned (its outcome is unknown).
const pending = math.MaxInt64

func streamOf(input any) int {
	switch in := input.(type) {
	case appendInput:
		return in.Stream
	case readInput:
		return in.Stream
	}
	return -1
}

// streamModel is the porcupine model of a set of independent versioned streams.
var streamModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byStream := map[int][]porcupine.Operation{}
		var order []int
		for _, op := range history {
			s := streamOf(op.Input)
			if _, ok := byStream[s]; !ok {
				order = append(order, s)
			}
			byStream[s] = append(byStream[s], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, s := range order {
			out = append(out, byStream[s])
		}
		return out
	},
	Init: func() any { return streamState{} },
	Step: func(state, input, output any) (bool, any) {
		st := state.(streamState)
		switch in := input.(type) {
		case readInput:
			out := output.(readOutput)
			return out.Version == st.Version && out.Digest == st.Digest, st
		case appendInput:
			out := output.(appendOutput)
			admitted := in.admits(st.Version)
			next := st.with(in.IDs)
			switch out.Kind {
			case resOK:
				return admitted && out.Version == next.Version, next
			case resConflict:
				// A conflict writes nothing. For an exact version or NoStream it must mean that the
				// condition failed. An Any or StreamExists append may also conflict when it lost the
				// race for the next version to a concurrent append (eventstore retries that a few
				// times for Any only; see TestStreamExistsAppendRace): its condition still held.
				return !admitted || in.Expect == expAny || in.Expect == expExists, st
			case resFailed:
				return true, st
			case resUnknown:
				if admitted {
					return true, next
				}
				return true, st
			}
		}
		return false, st
	},
	Hash: func(state any) uint64 {
		st := state.(streamState)
		return st.Digest ^ uint64(st.Version)
	},
	DescribeOperation: func(input, output any) string {
		switch in := input.(type) {
		case appendInput:
			return fmt.Sprintf("%s → %s", in, output.(appendOutput))
		case readInput:
			out := output.(readOutput)
			return fmt.Sprintf("s%d.read() → %s", in.Stream, streamState(out))
		}
		return fmt.Sprintf("%v → %v", input, output)
	},
	DescribeState: func(state any) string { return state.(streamState).String() },
}

// checkHistory checks a history against streamModel. When it is not linearizable (or the checker ran
// out of time), the history is saved as porcupine's visualization (HTML) and as JSON, the paths are
// logged and the test fails.
func checkHistory(t *testing.T, history []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(streamModel, history, timeout)
	if res != porcupine.Ok {
		html, js := saveHistory(t, history, info)
		t.Errorf("the history of %d operations is %s for the versioned-stream model (Unknown: the checker "+
			"timed out); visualization: %s, history: %s", len(history), res, html, js)
		if res == porcupine.Illegal {
			for _, line := range explain(history, timeout) {
				t.Log(line)
			}
		}
	}
	return res
}

// explain finds a stream whose history is not linearizable and the earliest moment T at which its
// history up to T is not: the operations called by T, where one that had not returned by T counts as
// not returned (a read is left out, an append becomes one of unknown outcome). It returns the last
// operations up to T, one per line; the one marked "<-" called or returned at T: no linearization can
// take it in.
func explain(history []porcupine.Operation, timeout time.Duration) []string {
	for _, part := range streamModel.Partition(history) {
		if porcupine.CheckOperationsTimeout(streamModel, part, timeout) != porcupine.Illegal {
			continue
		}
		part = slices.Clone(part)
		slices.SortFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		var times []int64
		for _, op := range part {
			times = append(times, op.Call)
			if op.Return != pending {
				times = append(times, op.Return)
			}
		}
		slices.Sort(times)
		times = slices.Compact(times)
		upTo := func(at int64) []porcupine.Operation {
			var out []porcupine.Operation
			for _, op := range part {
				if op.Call > at {
					break
				}
				if op.Return > at {
					if _, ok := op.Input.(readInput); ok {
						continue
					}
					op.Return, op.Output = pending, appendOutput{Kind: resUnknown}
				}
				out = append(out, op)
			}
			return out
		}
		// Histories only get more constrained as T grows, and the whole one (the last T) is illegal.
		lo, hi := 0, len(times)-1
		for lo < hi {
			mid := (lo + hi) / 2
			if porcupine.CheckOperationsTimeout(streamModel, upTo(times[mid]), timeout) == porcupine.Illegal {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		at := times[lo]
		ops := upTo(at)
		lines := []string{fmt.Sprintf("stream s%d: its history up to %s (%d operations) is not linearizable; "+
			"the last operations (client, [call, return]):", streamOf(part[0].Input), time.Duration(at), len(ops))}
		for _, op := range ops[max(0, len(ops)-25):] {
			ret, mark := "never", ""
			if op.Return != pending {
				ret = time.Duration(op.Return).String()
			}
			if op.Call == at || op.Return == at {
				mark = "  <-"
			}
			note := ""
			if op.Metadata != nil {
				note = fmt.Sprintf("  (%v)", op.Metadata)
			}
			lines = append(lines, fmt.Sprintf("  c%d [%s, %s] %s%s%s", op.ClientId, time.Duration(op.Call), ret,
				streamModel.DescribeOperation(op.Input, op.Output), note, mark))
		}
		return lines
	}
	return nil
}

// artifactsDir is where failing histories go: $USERSTORE_FAULTS_ARTIFACTS, or
// $TMPDIR/userstore-faults.
func artifactsDir() string {
	if d := os.Getenv(envArtifacts); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "userstore-faults")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// savedOp is an operation of a saved history in JSON.
type savedOp struct {
	Client   int    `json:"client"`
	Op       string `json:"op"`
	Input    any    `json:"input"`
	Output   any    `json:"output"`
	Call     int64  `json:"call_ns"`
	Return   *int64 `json:"return_ns"` // null: never returned (outcome unknown)
	Describe string `json:"describe"`
	Note     any    `json:"note,omitempty"`
}

// saveHistory writes the history's visualization and JSON under artifactsDir and returns their paths.
func saveHistory(t *testing.T, history []porcupine.Operation, info porcupine.LinearizationInfo) (string, string) {
	t.Helper()
	dir := artifactsDir()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	base := filepath.Join(dir, unsafeName.ReplaceAllString(t.Name(), "_")+"-"+time.Now().Format("20060102-150405.000"))
	html := base + ".html"
	if err := porcupine.VisualizePath(streamModel, info, html); err != nil {
		t.Logf("crashtest: porcupine could not write the visualization: %v", err)
	}
	ops := make([]savedOp, len(history))
	for i, h := range history {
		ops[i] = savedOp{Client: h.ClientId, Input: h.Input, Output: h.Output, Call: h.Call,
			Describe: streamModel.DescribeOperation(h.Input, h.Output), Note: h.Metadata}
		if _, ok := h.Input.(appendInput); ok {
			ops[i].Op = "append"
		} else {
			ops[i].Op = "read"
		}
		if h.Return != pending {
			r := h.Return
			ops[i].Return = &r
		}
	}
	b, err := json.MarshalIndent(ops, "", "  ")
	require.NoError(t, err)
	js := base + ".json"
	require.NoError(t, os.WriteFile(js, b, 0o644))
	t.Logf("crashtest: saved the history: %s and %s", html, js)
	return html, js
}

// The checker's verdicts on small fabricated histories: it must reject what a store that loses,
// duplicates or half-applies an append, or applies one that it reported as not applied, would
// produce — and accept what a correct store may produce, including appends of unknown outcome.
func TestCheckerVerdicts(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	exact := func(stream int, v int64, ids ...uuid.UUID) appendInput {
		return appendInput{Stream: stream, Expect: expExact, Version: v, IDs: ids}
	}
	read := func(ids ...uuid.UUID) readOutput { return readOutput(streamState{}.with(ids)) }
	op := func(client int, in, out any, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	ok := func(v int64) appendOutput { return appendOutput{Kind: resOK, Version: v} }
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"acknowledged append then reads", []porcupine.Operation{
			op(0, exact(0, 0, a, b), ok(2), 0, 10),
			op(1, readInput{0}, read(a, b), 20, 30),
			op(0, exact(0, 2, c), ok(3), 40, 50),
			op(1, readInput{0}, read(a, b, c), 60, 70),
		}, porcupine.Ok},
		{"a read concurrent with an append sees it or not", []porcupine.Operation{
			op(0, exact(0, 0, a), ok(1), 0, 100),
			op(1, readInput{0}, read(), 10, 20),
			op(2, readInput{0}, read(a), 30, 40),
		}, porcupine.Ok},
		{"read misses an acknowledged append (lost)", []porcupine.Operation{
			op(0, exact(0, 0, a), ok(1), 0, 10),
			op(1, readInput{0}, read(), 20, 30),
		}, porcupine.Illegal},
		{"two appends at the same expected version both acknowledged (applied twice)", []porcupine.Operation{
			op(0, exact(0, 0, a), ok(1), 0, 10),
			op(1, exact(0, 0, b), ok(1), 20, 30),
		}, porcupine.Illegal},
		{"read sees half of an append", []porcupine.Operation{
			op(0, exact(0, 0, a, b), ok(2), 0, 10),
			op(1, readInput{0}, read(a), 20, 30),
		}, porcupine.Illegal},
		{"a failed append is visible (phantom)", []porcupine.Operation{
			op(0, exact(0, 0, a), appendOutput{Kind: resFailed}, 0, 10),
			op(1, readInput{0}, read(a), 20, 30),
		}, porcupine.Illegal},
		{"an Any or StreamExists append that lost a race conflicts without effect", []porcupine.Operation{
			op(0, exact(0, 0, a), ok(1), 0, 10),
			op(1, appendInput{Stream: 0, Expect: expExists, IDs: []uuid.UUID{b}}, appendOutput{Kind: resConflict}, 20, 30),
			op(1, appendInput{Stream: 0, Expect: expAny, IDs: []uuid.UUID{c}}, appendOutput{Kind: resConflict}, 40, 50),
			op(2, readInput{0}, read(a), 60, 70),
		}, porcupine.Ok},
		{"a conflict reported while the exact version held", []porcupine.Operation{
			op(0, exact(0, 0, a), appendOutput{Kind: resConflict}, 0, 10),
			op(1, readInput{0}, read(), 20, 30),
		}, porcupine.Illegal},
		{"an append of unknown outcome that happened", []porcupine.Operation{
			op(0, exact(0, 0, a), appendOutput{Kind: resUnknown}, 0, pending),
			op(1, readInput{0}, read(a), 20, 30),
			op(1, exact(0, 1, b), ok(2), 40, 50),
		}, porcupine.Ok},
		{"an append of unknown outcome that did not happen", []porcupine.Operation{
			op(0, exact(0, 0, a), appendOutput{Kind: resUnknown}, 0, pending),
			op(1, readInput{0}, read(), 20, 30),
			op(1, exact(0, 0, b), ok(1), 40, 50),
			op(1, readInput{0}, read(b), 60, 70),
		}, porcupine.Ok},
		{"two appends of unknown outcome at one expected version cannot both happen", []porcupine.Operation{
			op(0, exact(0, 0, a), appendOutput{Kind: resUnknown}, 0, pending),
			op(1, exact(0, 0, b), appendOutput{Kind: resUnknown}, 5, pending),
			op(2, readInput{0}, read(a, b), 20, 30),
		}, porcupine.Illegal},
		{"streams are independent", []porcupine.Operation{
			op(0, exact(0, 0, a), ok(1), 0, 10),
			op(1, exact(1, 0, b), ok(1), 0, 10),
			op(2, readInput{1}, read(b), 20, 30),
			op(2, readInput{0}, read(a), 40, 50),
		}, porcupine.Ok},
		{"a read of another stream's events", []porcupine.Operation{
			op(0, exact(0, 0, a), ok(1), 0, 10),
			op(2, readInput{1}, read(a), 20, 30),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := porcupine.CheckOperationsTimeout(streamModel, tc.history, time.Minute)
			require.Equal(t, tc.want, res)
		})
	}
}

// TestCheckerRejectsBadHistory: a history in which a read misses an acknowledged append is rejected
// (beside an append of unknown outcome, which never returns), and the failure is saved as a
// visualization and JSON where the harness says.
func TestCheckerRejectsBadHistory(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(envArtifacts, dir)
	a := uuid.New()
	history := []porcupine.Operation{
		{ClientId: 0, Input: appendInput{Stream: 0, Expect: expNoStream, IDs: []uuid.UUID{a}},
			Output: appendOutput{Kind: resOK, Version: 1}, Call: 0, Return: 10},
		{ClientId: 1, Input: readInput{Stream: 0}, Output: readOutput{}, Call: 20, Return: 30},
		{ClientId: 2, Input: appendInput{Stream: 0, Expect: expExact, Version: 1, IDs: []uuid.UUID{uuid.New()}},
			Output: appendOutput{Kind: resUnknown}, Call: 25, Return: pending, Metadata: "commit outcome unknown"},
	}
	res, info := porcupine.CheckOperationsVerbose(streamModel, history, time.Minute)
	require.Equal(t, porcupine.Illegal, res)
	html, js := saveHistory(t, history, info)
	for _, p := range []string{html, js} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, fi.Size())
		require.Equal(t, dir, filepath.Dir(p))
	}
	b, err := os.ReadFile(js)
	require.NoError(t, err)
	require.Contains(t, string(b), "s0.read() → v0 #0000")

	// The explanation ends at the read that cannot be placed.
	lines := explain(history, time.Minute)
	require.NotEmpty(t, lines)
	for _, l := range lines {
		t.Log(l)
	}
	require.Contains(t, lines[0], "stream s0: its history up to 30ns (3 operations) is not linearizable")
	require.Contains(t, lines[2], "s0.read() → v0 #0000  <-")
}
