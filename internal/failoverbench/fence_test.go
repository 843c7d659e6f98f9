package failoverbench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFencingViolations(t *testing.T) {
	t.Parallel()
	newAck := time.Now()
	writes := []pinnedWrite{
		{value: []byte("a"), sent: newAck.Add(-time.Second), acked: true, term: 5},                      // before the new leader: fine
		{value: []byte("b"), sent: newAck.Add(time.Second), acked: false, term: 0},                      // refused: fine
		{value: []byte("c"), sent: newAck.Add(time.Second), acked: true, term: 5},                       // after, old term: violation
		{value: []byte("d"), sent: newAck.Add(-time.Second), acked: true, term: 5, prev: []byte("new")}, // replaced the new value
		{value: []byte("e"), sent: newAck.Add(time.Second), acked: true, term: 7},                       // its own newer term: fine
	}
	bad := fencingViolations(writes, 5, newAck, []byte("new"))
	require.Len(t, bad, 2)
	require.Equal(t, "c", string(bad[0].value))
	require.Equal(t, "d", string(bad[1].value))
	require.Contains(t, describeViolation(bad[0], newAck), `write "c" acknowledged under term 5`)
}

func TestSummarise(t *testing.T) {
	t.Parallel()
	rep := Report{Rounds: []Round{
		{Took: 100 * time.Millisecond, ClientWriteMs: 150, ClientReadMs: 120},
		{TimedOut: true, ClientWriteTimedOut: true, ClientReadMs: 300},
		{Took: 300 * time.Millisecond, Violations: 1, ClientWriteMs: 350, ClientReadMs: 320},
	}}
	rep.summarise()
	require.Equal(t, 1, rep.Timeouts)
	require.Equal(t, 1, rep.Violations)
	require.True(t, rep.Failed())
	require.Equal(t, 300.0, rep.MedianMs)
	require.Equal(t, 300.0, rep.MaxMs)
	require.Equal(t, 1, rep.ClientWrite.Timeouts)
	require.Equal(t, 0, rep.ClientRead.Timeouts)
	require.Contains(t, rep.Rounds[1].Line(3), "no new leader accepted a write in time")
}
