package redisched

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// TestWorker runs due and future jobs once, retries failures with backoff, then stops.
// (tests/test_glue_workers.py drives the worker process from Python: kill -9, grace, lag.)
func TestWorker(t *testing.T) {
	c, topic := testClient(t, "go-worker-")
	var mu sync.Mutex
	var ran []string
	handler := func(ctx context.Context, job *Job) (any, error) {
		mu.Lock()
		ran = append(ran, job.ID+":"+strconv.FormatInt(job.Attempts, 10))
		mu.Unlock()
		switch {
		case job.ID == "retry" && job.Attempts == 1:
			return nil, Retry(50*time.Millisecond, "again")
		case job.ID == "dead":
			return nil, errors.New("always")
		case job.ID == "later":
			return bytes.Repeat([]byte("x"), 70_000), nil
		case job.ID == "now":
			return map[string]any{"ran": job.ID, "é": []float64{1, 2.5}}, nil
		}
		return make(chan int), nil // not JSON: kept as its %v text
	}
	ctx := context.Background()
	ready := make(chan struct{})
	w, err := NewWorker(c, map[string]Handler{topic: Returning(handler)}, Options{IgnoreSignals: true,
		Backoff: &Backoff{20 * time.Millisecond, 20 * time.Millisecond, 0}, OnReady: func() { close(ready) },
		Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	<-ready
	for _, put := range []struct {
		id string
		o  PutOptions
	}{{"now", PutOptions{}}, {"later", PutOptions{DelayMs: 150}}, {"retry", PutOptions{}}, {"dead", PutOptions{MaxAttempts: 2}}} {
		if _, _, err := c.Put(ctx, topic, put.id, []byte("x"), put.o); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		job, err := c.Get(ctx, topic, "dead")
		if err != nil {
			t.Fatal(err)
		}
		later, _ := c.Get(ctx, topic, "later")
		retry, _ := c.Get(ctx, topic, "retry")
		if job != nil && job.State == "dead" && later == nil && retry == nil {
			if job.LastError != "always" {
				t.Fatalf("last_error %q", job.LastError)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", ran)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sort.Strings(ran)
	if got := strings.Join(ran, " "); got != "dead:1 dead:2 later:1 now:1 retry:1 retry:2" {
		t.Fatalf("runs: %s", got)
	}
	// A handler's return value is the job's result, encoded and cut as the Python Worker does.
	result := func(id string) []byte {
		r, err := redis.Values(c.Call(ctx, "history", topic, Args{"id": id}))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := redis.Bytes(r[4], nil)
		return data
	}
	if got := string(result("now")); got != `{"ran":"now","\u00e9":[1,2.5]}` {
		t.Fatalf("result of now: %s", got)
	}
	if got := len(result("later")); got != ResultLimit {
		t.Fatalf("result of later: %d bytes", got)
	}
	if got := string(result("retry")); !strings.HasPrefix(got, "0x") {
		t.Fatalf("result of retry: %q", got)
	}
}

// TestSignature checks the Standard Webhooks example of its specification, and cluster slots.
func TestSignatureAndSlots(t *testing.T) {
	key, err := SecretKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	headers := SignHeaders("msg_p5jXN8AQM9LWM0D4loKWxJek", []byte(`{"test": 2432232314}`), [][]byte{key}, 1614265330)
	if headers["webhook-signature"] != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("signature %s", headers["webhook-signature"])
	}
	// Slots from the Redis Cluster specification's examples.
	for key, slot := range map[string]int{"foo": 12182, "{user1000}.following": 3443} {
		if Slot(key) != slot {
			t.Fatalf("slot of %s: %d, not %d", key, Slot(key), slot)
		}
	}
	if Slot("redisched:{emails}:jobs") != Slot("emails") {
		t.Fatal("a topic's keys must share the slot of its hash tag")
	}
}

// TestRetryBadDelay: Retry with a negative delay is an *InvalidArgument, which fails the job with
// backoff and its message as last error (before, the release was refused and the job stayed
// reserved, with no error, until its ttr), and so does a hand-built *RetryError with a delay
// outside 0 to a century; bad Options are refused.
func TestRetryBadDelay(t *testing.T) {
	c, topic := testClient(t, "go-worker-")
	var invalid *InvalidArgument
	if err := Retry(-time.Second, "x"); !errors.As(err, &invalid) || invalid.Field != "delay" {
		t.Fatalf("Retry(-1s): %v", err)
	}
	quiet := log.New(io.Discard, "", 0)
	handlers := map[string]Handler{"x": func(context.Context, *Job) error { return nil }}
	if _, err := NewWorker(c, handlers, Options{TTRMs: -1, Logger: quiet}); !errors.As(err, &invalid) || invalid.Field != "TTRMs" {
		t.Fatalf("TTRMs -1: %v", err)
	}
	if _, err := NewWorker(c, handlers, Options{Grace: -time.Second, Logger: quiet}); !errors.As(err, &invalid) || invalid.Field != "Grace" {
		t.Fatalf("Grace -1s: %v", err)
	}
	ctx := context.Background()
	// a hand-built *RetryError with a bad delay fails the same way (before, its release was
	// refused and the job stayed reserved until its ttr)
	returned := map[string]error{"j": Retry(-time.Second, "negative"), "k": &RetryError{-time.Second, "negative"},
		"m": &RetryError{time.Duration(maxDelayMs+1) * time.Millisecond, "too late"},
		// a nil *RetryError in a non-nil error: it panicked the worker's goroutine (not the
		// handler's, where safeCall recovers), ending the process
		"n": error((*RetryError)(nil)),
		// a reason over Release's limit: the release was refused and the job stayed reserved
		"p": &RetryError{0, strings.Repeat("x", maxTextChars+1)}}
	if err := Retry(0, strings.Repeat("x", maxTextChars+1)); !errors.As(err, &invalid) || invalid.Field != "reason" {
		t.Fatalf("Retry with a long reason: %v", err)
	}
	for id := range returned {
		if _, _, err := c.Put(ctx, topic, id, []byte("x"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ready := make(chan struct{})
	w, err := NewWorker(c, map[string]Handler{topic: func(_ context.Context, job *Job) error {
		return returned[job.ID]
	}}, Options{IgnoreSignals: true, Backoff: &Backoff{time.Minute, time.Minute, 0},
		OnReady: func() { close(ready) }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	<-ready
	deadline := time.Now().Add(5 * time.Second)
	for id := range returned {
		for {
			job, err := c.Get(ctx, topic, id)
			if err != nil {
				t.Fatal(err)
			}
			if job.State == "scheduled" {
				want := map[string]string{"n": "nil *RetryError", "p": "reason: must be at most 65536 characters"}[id]
				if want == "" {
					want = "delay: must be from 0"
				}
				if !strings.Contains(job.LastError, want) {
					t.Fatalf("%s: last error %q", id, job.LastError)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the job was not released: %+v", id, job)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
