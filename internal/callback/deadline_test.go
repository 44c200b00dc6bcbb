package callback

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// The reply deadline's context behaves as context.WithDeadline would: it
// ends at the deadline or with the request, carries the request's values,
// and costs nothing when nobody waits on it.
func TestDeadlineContext(t *testing.T) {
	parent := context.WithValue(t.Context(), ctxKey{}, "request")

	c := &deadlineContext{Context: parent, deadline: time.Now().Add(50 * time.Millisecond)}
	if c.Value(ctxKey{}) != "request" {
		t.Fatal("the request's values are lost")
	}
	if d, ok := c.Deadline(); !ok || !d.Equal(c.deadline) {
		t.Fatalf("deadline %v %v, want %v", d, ok, c.deadline)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not done after its deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("err %v", c.Err())
	}
	c.release()

	request, cancel := context.WithCancel(parent)
	c = &deadlineContext{Context: request, deadline: time.Now().Add(time.Hour)}
	done := c.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not done when the request ended")
	}
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("err %v", c.Err())
	}
	c.release()

	unused := &deadlineContext{Context: parent, deadline: time.Now().Add(time.Hour)}
	unused.release()
	if unused.bound != nil {
		t.Fatal("a context nobody waited on made its timer")
	}
}
