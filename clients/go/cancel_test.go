package redisched

import (
	"context"
	"fmt"
	"io"
	"log"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// jobHistory reads history.lua's reply for id: the outcome, the result, and each event as
// "kind:version".
func jobHistory(t *testing.T, c *Client, topic, id string) (outcome, result string, events []string) {
	t.Helper()
	r, err := redis.Values(c.Call(context.Background(), "history", topic, Args{"id": id}))
	if err != nil || len(r) < 6 {
		t.Fatalf("history of %s: %v %v", id, r, err)
	}
	outcome, _ = redis.String(r[0], nil)
	result, _ = redis.String(r[4], nil)
	for _, raw := range r[6:] {
		event, _ := redis.Values(raw, nil)
		kind, _ := redis.String(event[0], nil)
		version, _ := redis.Int64(event[2], nil)
		events = append(events, fmt.Sprintf("%s:%d", kind, version))
	}
	return outcome, result, events
}

// TestCancelRunning: the Worker acts on the cancel message (`c<token>:<id>`, docs/design.md s. 7)
// for a running job. A delete, an abort or a replace cancels the handler's ctx at once (not at
// its next touch, past half its ttr), and the attempt is released, never acked: a replaced
// job's new version runs at once, alone acked, even though the old handler returned nil.
func TestCancelRunning(t *testing.T) {
	c, topic := testClient(t, "go-cancel-")
	ctx := context.Background()
	var mu sync.Mutex
	var started []string
	cancelledAt := map[string]time.Time{}
	handler := func(ctx context.Context, job *Job) (any, error) {
		body := string(job.Body)
		mu.Lock()
		started = append(started, job.ID+":"+body)
		mu.Unlock()
		if body == "v2" {
			return "done v2", nil
		}
		select { // the long ttr below puts the first touch 30 s away
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		mu.Lock()
		if ctx.Err() != nil {
			cancelledAt[job.ID] = time.Now()
		}
		mu.Unlock()
		if job.ID == "replaced" {
			return "done " + body, nil // finishes anyway: must not be acked
		}
		return nil, ctx.Err()
	}
	ready := make(chan struct{})
	w, err := NewWorker(c, map[string]Handler{topic: Returning(handler)}, Options{IgnoreSignals: true,
		TTRMs: 60_000, OnReady: func() { close(ready) }, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		w.Stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-ready
	wait := func(what string, within time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	hasStarted := func(run string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, s := range started {
				if s == run {
					return true
				}
			}
			return false
		}
	}
	cancels := []struct {
		id     string
		cancel func() error
	}{
		{"deleted", func() error { _, err := c.Delete(ctx, topic, "deleted", 0); return err }},
		{"aborted", func() error { _, err := c.Abort(ctx, topic, "aborted", "wrong customer"); return err }},
		{"replaced", func() error {
			_, _, err := c.Put(ctx, topic, "replaced", []byte("v2"), PutOptions{Replace: true})
			return err
		}},
	}
	for _, cc := range cancels {
		if _, _, err := c.Put(ctx, topic, cc.id, []byte("v1"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
		wait(cc.id+" started", 5*time.Second, hasStarted(cc.id+":v1"))
		asked := time.Now()
		if err := cc.cancel(); err != nil {
			t.Fatal(err)
		}
		wait(cc.id+": its ctx was not cancelled", 3*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !cancelledAt[cc.id].IsZero()
		})
		mu.Lock()
		took := cancelledAt[cc.id].Sub(asked)
		mu.Unlock()
		if took > 500*time.Millisecond {
			t.Errorf("%s: cancelled %s after the cancel", cc.id, took)
		}
	}
	wait("the new version ran", 5*time.Second, func() bool {
		outcome, _, _ := jobHistory(t, c, topic, "replaced")
		return outcome == "done"
	})
	if outcome, kind, detail := lastEvent(t, c, topic, "deleted"); outcome != "cancelled" || kind != "deleted" || detail != "was running; cancel sent" {
		t.Errorf("deleted: %q %q %q", outcome, kind, detail)
	}
	if outcome, kind, detail := lastEvent(t, c, topic, "aborted"); outcome != "aborted" || kind != "aborted" || detail != "wrong customer; was running; cancel sent" {
		t.Errorf("aborted: %q %q %q", outcome, kind, detail)
	}
	// The old attempt was released, not acked: the new version ran at once and alone was acked.
	_, result, events := jobHistory(t, c, topic, "replaced")
	if result != "done v2" {
		t.Errorf("replaced: result %q", result)
	}
	if len(events) < 4 || fmt.Sprint(events[len(events)-4:]) != "[replaced:1 released:1 reserved:2 acked:2]" {
		t.Errorf("replaced: events %v", events)
	}
	mu.Lock()
	if got := fmt.Sprint(started); got != "[deleted:v1 aborted:v1 replaced:v1 replaced:v2]" {
		t.Errorf("runs: %s", got)
	}
	mu.Unlock()
}

// TestOwnRequeueCancelsNoNewAttempt: the cancel messages a Worker's own requeue publishes (one
// per expired reservation) may be read after the jobs were leased anew (its subscriber a little
// behind its lease loop): they name the expired tokens, so the new attempts go on (naming only
// the id, they cancelled them, and each job ran a third time). One OS thread and a handler that
// takes a while make the lag likely.
func TestOwnRequeueCancelsNoNewAttempt(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c, topic := testClient(t, "go-requeue-")
	ctx := context.Background()
	const jobs = 8
	for round := 0; round < 25; round++ {
		var mu sync.Mutex
		runs := map[string][]int64{}
		for i := 0; i < jobs; i++ {
			if _, _, err := c.Put(ctx, topic, fmt.Sprintf("r%d-%d", round, i), []byte("x"), PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// held by a consumer that died: their reservations run out in 20 ms
		if leased, err := c.Reserve(ctx, topic, jobs, 20); err != nil || len(leased) != jobs {
			t.Fatalf("reserve: %v %v", leased, err)
		}
		time.Sleep(30 * time.Millisecond)
		w, err := NewWorker(c, map[string]Handler{topic: func(_ context.Context, job *Job) error {
			mu.Lock()
			runs[job.ID] = append(runs[job.ID], job.Attempts)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			return nil
		}}, Options{IgnoreSignals: true, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(runs)
			mu.Unlock()
			if n == jobs {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: timed out: %v", round, runs)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // a cancelled attempt would run again by now
		w.Stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for id, attempts := range runs {
			if fmt.Sprint(attempts) != "[2]" {
				t.Errorf("round %d: %s ran as attempts %v, not once as attempt 2", round, id, attempts)
			}
		}
		mu.Unlock()
	}
}
