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
		require.True(t, s.Elected(term))
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
	require.True(t, s.Elected(1))
	require.False(t, s.StepDown(7), "step down from another term")
	require.True(t, s.Elected(2), "a new term implies the old one stepped down")
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
	s.Elected(3)
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
	s.Elected(1)
	s.Close()
	s.Close()
	require.False(t, s.Elected(2), "closed stream accepts nothing")
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
	s.Elected(1)
	cancel()
	cancel()
	// Whatever was in flight may still arrive; then the channel closes.
	for range ch {
	}
	s.StepDown(1)
}
