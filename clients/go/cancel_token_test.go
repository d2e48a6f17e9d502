package redisched

import (
	"bytes"
	"context"
	"io"
	"log"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// raceConn drives the order of what a Worker reads (docs/design.md section 7): with the gate
// closed, the cancel messages (a wake message starting with a letter) its subscriber reads are
// held back until open(), as a subscriber on a slower connection, or on another Cluster node,
// may read them late; and the first reply that holds the bytes of onReply's id runs onReply
// before the Worker sees it (a delete between the lease and the reading of its reply).
type raceConn struct {
	redis.Conn
	race *race
}

type race struct {
	mu      sync.Mutex
	closed  bool
	held    int
	stash   []any // replies held back, in order (the subscriber reads one connection)
	replyID []byte
	onReply func()
}

func (r *race) open() {
	r.mu.Lock()
	r.closed = false
	r.mu.Unlock()
}

func (r *race) heldCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.held
}

func isCancel(reply any) bool {
	v, ok := reply.([]any)
	if !ok || len(v) != 3 {
		return false
	}
	kind, _ := redis.String(v[0], nil)
	data, _ := redis.Bytes(v[2], nil)
	return kind == "message" && len(data) > 0 && data[0] >= 'a' && data[0] <= 'z'
}

func holds(reply any, id []byte) bool {
	switch v := reply.(type) {
	case []byte:
		return bytes.Equal(v, id)
	case []any:
		for _, x := range v {
			if holds(x, id) {
				return true
			}
		}
	}
	return false
}

func (c raceConn) Receive() (any, error) {
	r := c.race
	for {
		r.mu.Lock()
		if !r.closed && len(r.stash) > 0 {
			reply := r.stash[0]
			r.stash = r.stash[1:]
			r.mu.Unlock()
			return reply, nil
		}
		r.mu.Unlock()
		reply, err := c.Conn.Receive()
		if err != nil {
			return reply, err
		}
		r.mu.Lock()
		if r.closed && isCancel(reply) || len(r.stash) > 0 && isMessage(reply) {
			if isCancel(reply) {
				r.held++
			}
			r.stash = append(r.stash, reply)
			r.mu.Unlock()
			continue
		}
		onReply := r.onReply
		if onReply != nil && holds(reply, r.replyID) {
			r.onReply = nil
		} else {
			onReply = nil
		}
		r.mu.Unlock()
		if onReply != nil {
			onReply()
		}
		return reply, nil
	}
}

func isMessage(reply any) bool {
	v, ok := reply.([]any)
	if !ok || len(v) != 3 {
		return false
	}
	kind, _ := redis.String(v[0], nil)
	return kind == "message"
}

// raceClient is a Client whose connections are raceConns of r.
func raceClient(t *testing.T, r *race) *Client {
	t.Helper()
	url := os.Getenv("REDISCHED_TEST_REDIS_URL")
	pool := &redis.Pool{MaxIdle: 4, Dial: func() (redis.Conn, error) {
		conn, err := redis.DialURL(url)
		if err != nil {
			return nil, err
		}
		return raceConn{conn, r}, nil
	}}
	t.Cleanup(func() { pool.Close() })
	c, err := New(pool, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLateCancelOfAnOlderReservation: the job's first reservation (a consumer that died) ends at
// its deadline, by another process's requeue or the worker's own; its cancel is read only once
// the worker leased the job anew and its handler started. It names the old token: the new
// attempt goes on and is acked.
func TestLateCancelOfAnOlderReservation(t *testing.T) {
	c, topic := testClient(t, "go-late-cancel-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "j", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	old, err := c.Reserve(ctx, topic, 1, 200)
	if err != nil || len(old) != 1 {
		t.Fatalf("reserve: %v %v", old, err)
	}
	r := &race{closed: true}
	var mu sync.Mutex
	var ended []string
	started := false
	w, err := NewWorker(raceClient(t, r), map[string]Handler{topic: func(ctx context.Context, job *Job) error {
		mu.Lock()
		started = true
		mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(600 * time.Millisecond):
		}
		mu.Lock()
		defer mu.Unlock()
		if job.Token == old[0].Token {
			ended = append(ended, "the old token")
		} else if ctx.Err() != nil {
			ended = append(ended, "cancelled")
		} else {
			ended = append(ended, "done")
		}
		return ctx.Err()
	}}, Options{IgnoreSignals: true, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(250 * time.Millisecond)
	if _, _, err := c.requeue(ctx, topic, 1000); err != nil { // unless the worker's came first
		t.Fatal(err)
	}
	waitFor(t, "the new attempt started", func() bool { mu.Lock(); defer mu.Unlock(); return started })
	if n := r.heldCount(); n != 1 {
		t.Fatalf("%d cancel messages held, not 1", n)
	}
	r.open()
	conn := c.Pool.Get()
	_, err = conn.Do("PUBLISH", c.WakeChannel(topic), "0") // the subscriber reads what it held
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the handler ended", func() bool { mu.Lock(); defer mu.Unlock(); return len(ended) > 0 })
	w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := ended[0]; got != "done" {
		t.Errorf("the new attempt: %s", got)
	}
	if outcome, _, _ := jobHistory(t, c, topic, "j"); outcome != "done" {
		t.Errorf("outcome %q", outcome)
	}
}

// TestDeletedBeforeItsLeaseIsRead: the job is deleted between the lease that took it and the
// worker's reading of that lease's reply, the cancel read first, when there is no attempt to
// cancel yet: remembered, it keeps the handler from starting.
func TestDeletedBeforeItsLeaseIsRead(t *testing.T) {
	c, topic := testClient(t, "go-early-cancel-")
	ctx := context.Background()
	deleted := make(chan struct{})
	r := &race{replyID: []byte("doomed"), onReply: func() {
		if ok, err := c.Delete(ctx, topic, "doomed", 0); !ok || err != nil {
			t.Errorf("delete: %v %v", ok, err)
		}
		time.Sleep(200 * time.Millisecond) // the subscriber reads the cancel
		close(deleted)
	}}
	var mu sync.Mutex
	var ran []string
	w, err := NewWorker(raceClient(t, r), map[string]Handler{topic: func(_ context.Context, job *Job) error {
		mu.Lock()
		ran = append(ran, job.ID)
		mu.Unlock()
		return nil
	}}, Options{IgnoreSignals: true, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // subscribed
	if _, _, err := c.Put(ctx, topic, "doomed", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-deleted:
	case <-time.After(5 * time.Second):
		t.Fatal("the lease did not take the job")
	}
	if _, _, err := c.Put(ctx, topic, "next", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker went on", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) > 0 && ran[len(ran)-1] == "next"
	})
	w.Stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ran) != 1 {
		t.Errorf("runs: %v", ran)
	}
	if outcome, _, _ := jobHistory(t, c, topic, "doomed"); outcome != "cancelled" {
		t.Errorf("outcome %q", outcome)
	}
}
