package election

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func receive(t *testing.T, ch <-chan LeaderChange) LeaderChange {
	t.Helper()
	select {
	case c, ok := <-ch:
		require.True(t, ok, "stream closed early")
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no leadership change received")
		return LeaderChange{}
	}
}

func requireClosed(t *testing.T, ch <-chan LeaderChange) {
	t.Helper()
	select {
	case c, ok := <-ch:
		require.False(t, ok, "unexpected change %v", c)
	case <-time.After(10 * time.Second):
		t.Fatal("stream not closed")
	}
}

func TestStreamKeepsOrderForSlowSubscriber(t *testing.T) {
	t.Parallel()
	s := NewStream()
	ch, cancel := s.Subscribe()
	defer cancel()

	// Publishing never waits for the subscriber, however far behind it is.
	const terms = 1000
	for term := int64(1); term <= terms; term++ {
		require.True(t, s.Elected(term, time.Time{}))
		require.True(t, s.StepDown(term))
	}
	for term := int64(1); term <= terms; term++ {
		require.Equal(t, LeaderChange{Kind: Elected, Term: term}, receive(t, ch))
		require.Equal(t, LeaderChange{Kind: StepDown, Term: term}, receive(t, ch))
	}
	require.EqualValues(t, 2*terms, s.Changes())
}

func TestStreamEnforcesInvariant(t *testing.T) {
	t.Parallel()
	s := NewStream()
	ch, cancel := s.Subscribe()
	defer cancel()

	require.False(t, s.StepDown(1), "step down without election")
	require.True(t, s.Elected(1, time.Time{}))
	require.False(t, s.StepDown(7), "step down from another term")
	require.True(t, s.Elected(2, time.Time{}), "a new term implies the old one stepped down")
	require.True(t, s.StepDown(2))
	require.False(t, s.StepDown(2), "second step down")

	want := []LeaderChange{{Elected, 1}, {StepDown, 1}, {Elected, 2}, {StepDown, 2}}
	for _, w := range want {
		require.Equal(t, w, receive(t, ch))
	}
}

func TestStreamLateSubscriberSeesCurrentTerm(t *testing.T) {
	t.Parallel()
	s := NewStream()
	s.Elected(3, time.Time{})
	ch, cancel := s.Subscribe()
	defer cancel()
	require.Equal(t, LeaderChange{Elected, 3}, receive(t, ch))
	require.Equal(t, int64(3), s.Term())
}

func TestStreamCloseDeliversFinalStepDown(t *testing.T) {
	t.Parallel()
	s := NewStream()
	ch, cancel := s.Subscribe()
	defer cancel()
	s.Elected(1, time.Time{})
	s.Close()
	s.Close()
	require.False(t, s.Elected(2, time.Time{}), "closed stream accepts nothing")
	require.Equal(t, LeaderChange{Elected, 1}, receive(t, ch))
	require.Equal(t, LeaderChange{StepDown, 1}, receive(t, ch))
	requireClosed(t, ch)

	after, cancelAfter := s.Subscribe()
	defer cancelAfter()
	requireClosed(t, after)
}

func TestStreamCancelEndsDelivery(t *testing.T) {
	t.Parallel()
	s := NewStream()
	ch, cancel := s.Subscribe()
	s.Elected(1, time.Time{})
	cancel()
	cancel()
	// Whatever was in flight may still arrive; then the channel closes.
	for range ch {
	}
	s.StepDown(1)
}

func TestStreamIsTheRecordOfTrust(t *testing.T) {
	t.Parallel()
	s := NewStream()
	defer s.Close()
	require.Zero(t, s.Trusted(), "never elected")
	require.False(t, s.Renew(1, time.Now().Add(time.Hour)), "renewing a term never led")

	require.True(t, s.Elected(1, time.Now().Add(time.Hour)))
	require.Equal(t, int64(1), s.Trusted())
	require.False(t, s.Renew(2, time.Now().Add(time.Hour)), "renewing another term")

	// A window that has ended is not revived by a late renewal, and the
	// term still leads (until its elector steps it down) without being
	// trusted.
	require.True(t, s.Renew(1, time.Now().Add(-time.Millisecond)))
	require.Zero(t, s.Trusted())
	require.False(t, s.Renew(1, time.Now().Add(time.Hour)))
	require.Equal(t, int64(1), s.Term(), "still leading, for reporting")
	l := s.Lease()
	require.True(t, l.Leading)
	require.False(t, l.Trusted(time.Now()))

	require.True(t, s.StepDown(1))
	require.Equal(t, Lease{Term: 1}, s.Lease(), "the last term led is kept, with no window")

	// A zero window (an elector without a lease) is trusted until StepDown.
	require.True(t, s.Elected(2, time.Time{}))
	require.Equal(t, int64(2), s.Trusted())
	s.Close()
	require.Zero(t, s.Trusted(), "Close steps down")
}
