package proccluster

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Slot is one process slot: a place a process runs in, can be signalled,
// paused, killed and started again. Every process leads its own process
// group, so signals reach anything it forks, and dies with this process
// (Pdeathsig) even if this one dies before cleaning up. The zero value is an
// empty slot; Name labels messages.
type Slot struct {
	Name string

	mu     sync.Mutex
	proc   *exec.Cmd
	done   chan struct{} // closed when proc exited and was waited for
	exit   error
	paused bool
	killed bool // the exit, if any, was ours
}

func (s *Slot) String() string { return s.Name }

// Start runs cmd in the slot; cmd must not have been started. Its
// SysProcAttr is replaced.
func (s *Slot) Start(cmd *exec.Cmd) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !isClosed(s.done) {
		return fmt.Errorf("%s is already running", s)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start %s: %w", s, cmd.Path, err)
	}
	done := make(chan struct{})
	s.proc, s.done, s.exit, s.paused, s.killed = cmd, done, nil, false, false
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.exit = err
		s.mu.Unlock()
		close(done)
	}()
	return nil
}

// Signal sends sig to the process group of the running process.
func (s *Slot) Signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || isClosed(s.done) {
		return fmt.Errorf("%s is not running", s)
	}
	if err := syscall.Kill(-s.proc.Process.Pid, sig); err != nil {
		return fmt.Errorf("%s: %s: %w", s, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		s.paused = true
	case syscall.SIGCONT:
		s.paused = false
	case syscall.SIGKILL:
		s.killed = true
	}
	return nil
}

// Kill SIGKILLs the process (paused or not) and waits until it is gone.
func (s *Slot) Kill() error {
	if err := s.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-s.Exited()
	return nil
}

// Pause freezes the process (SIGSTOP); Resume thaws it (SIGCONT).
func (s *Slot) Pause() error  { return s.Signal(syscall.SIGSTOP) }
func (s *Slot) Resume() error { return s.Signal(syscall.SIGCONT) }

// Running reports whether a process fills the slot (paused counts).
func (s *Slot) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil && !isClosed(s.done)
}

// Paused reports whether the running process is SIGSTOPped.
func (s *Slot) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused && s.proc != nil && !isClosed(s.done)
}

// Exited is closed when the current process has exited; it is nil for a
// slot that never ran one.
func (s *Slot) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Crashed returns why the process exited on its own, or nil when it runs,
// never ran, or was killed through the slot.
func (s *Slot) Crashed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || !isClosed(s.done) || s.killed {
		return nil
	}
	return fmt.Errorf("%s exited by itself: %v", s, s.exit)
}

// WaitExit waits for the process to end, killing it after timeout or when
// ctx ends. An empty slot returns at once.
func (s *Slot) WaitExit(ctx context.Context, timeout time.Duration) error {
	done := s.Exited()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	case <-time.After(timeout):
	}
	_ = s.Kill()
	<-done
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("%s did not exit within %s; killed", s, timeout)
}

// Stop ends the process for good: kill it (a SIGKILL ends a paused process
// too) and wait. Safe on an empty slot and twice.
func (s *Slot) Stop() {
	if !s.Running() {
		return
	}
	_ = s.Kill()
}

func isClosed(ch chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
