package pgkv

// Queued reports how many requests wait in the batcher's queue, so tests can
// build a batch of a known composition behind one held by the fence.
func (b *Batcher) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, r := range b.queue {
		if r.state.Load() == reqQueued {
			n++
		}
	}
	return n
}
