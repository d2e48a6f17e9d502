package redisched

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// lastEvent reads history.lua's reply for id: the outcome, and the kind and detail of the
// last event ("" for none).
func lastEvent(t *testing.T, c *Client, topic, id string) (outcome, kind, detail string) {
	t.Helper()
	r, err := redis.Values(c.Call(context.Background(), "history", topic, Args{"id": id}))
	if err != nil || len(r) < 7 {
		t.Fatalf("history of %s: %v %v", id, r, err)
	}
	event, _ := redis.Values(r[len(r)-1], nil)
	outcome, _ = redis.String(r[0], nil)
	kind, _ = redis.String(event[0], nil)
	detail, _ = redis.String(event[4], nil)
	return outcome, kind, detail
}

// TestAbort: an aborted job ends aborted with its reason (a dead one stays dead), the holder of
// a running one is told on the wake channel and its ack is stale, as the Python client's abort.
func TestAbort(t *testing.T) {
	c, topic := testClient(t, "go-abort-")
	now := int64(1_900_000_000_000)
	c.Clock = func() int64 { return now }
	ctx := context.Background()
	for _, id := range []string{"a", "r"} {
		if _, _, err := c.Put(ctx, topic, id, []byte("x"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := c.subscriberConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	psc := redis.PubSubConn{Conn: sub}
	defer psc.Close()
	if err := psc.Subscribe(c.Key(topic, "wake")); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.ReceiveWithTimeout(time.Second).(redis.Subscription); !ok {
		t.Fatal("no subscription")
	}
	jobs, err := c.Reserve(ctx, topic, 1, 0) // a (the first put)
	if err != nil || len(jobs) != 1 || jobs[0].ID != "a" {
		t.Fatalf("reserve: %v %v", jobs, err)
	}
	if ok, err := c.Abort(ctx, topic, "a", "wrong customer"); !ok || err != nil {
		t.Fatalf("abort a running job: %v %v", ok, err)
	}
	// the cancel, as a delete sends: the reservation's token, then the id
	if m, ok := psc.ReceiveWithTimeout(time.Second).(redis.Message); !ok || string(m.Data) != "c"+jobs[0].Token+":a" {
		t.Errorf("the cancel, as a delete sends: %q", m.Data)
	}
	if err := c.Ack(ctx, jobs[0]); !errors.Is(err, ErrStale) {
		t.Errorf("ack of an aborted job: %v", err)
	}
	for _, want := range []struct{ id, reason, outcome, detail string }{
		{"a", "", "aborted", "wrong customer; was running; cancel sent"},
		{"r", "", "aborted", ""},
	} {
		if want.id == "r" {
			if ok, err := c.Abort(ctx, topic, "r", ""); !ok || err != nil {
				t.Fatalf("abort a waiting job: %v %v", ok, err)
			}
		}
		if outcome, kind, detail := lastEvent(t, c, topic, want.id); outcome != want.outcome || kind != "aborted" || detail != want.detail {
			t.Errorf("%s: %q %q %q", want.id, outcome, kind, detail)
		}
	}
	if ok, err := c.Abort(ctx, topic, "r", "again"); ok || err != nil {
		t.Errorf("abort of a job gone: %v %v", ok, err)
	}
	if _, _, detail := lastEvent(t, c, topic, "r"); detail != "" {
		t.Errorf("nothing more is recorded: %q", detail)
	}
	if _, _, err := c.Put(ctx, topic, "b", []byte("x"), PutOptions{MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	jobs, _ = c.Reserve(ctx, topic, 1, 0)
	if state, err := c.Release(ctx, jobs[0], 0, "bad"); state != "dead" || err != nil {
		t.Fatalf("release: %v %v", state, err)
	}
	if ok, err := c.Abort(ctx, topic, "b", ""); !ok || err != nil {
		t.Fatalf("abort a dead job: %v %v", ok, err)
	}
	if outcome, kind, _ := lastEvent(t, c, topic, "b"); outcome != "dead" || kind != "aborted" {
		t.Errorf("a dead job stays dead: %q %q", outcome, kind)
	}
	stats, err := redis.Int64s(c.Call(ctx, "stats", topic, Args{"now_ms": now}))
	if err != nil || stats[18] != 2 || stats[16] != 1 || stats[15] != 0 { // finished aborted, dead, cancelled
		t.Errorf("stats: %v %v", stats, err)
	}
}

// TestAbortBadArguments: the reason is checked as the Python client's validate.text (valid
// UTF-8, at most 65536 characters), the id and topic as Delete's; nothing is sent.
func TestAbortBadArguments(t *testing.T) {
	c, topic := testClient(t, "go-abort-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "a", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct{ topic, id, reason, field, message string }{
		{topic, "a", "ab\xff", "reason", "must be valid UTF-8: an invalid byte at character 2"},
		{topic, "a", "é\xed\xa0\x80", "reason", "must be valid UTF-8: an invalid byte at character 1"},
		{topic, "a", strings.Repeat("x", 65537), "reason", "must be at most 65536 characters"},
		{topic, "", "ok", "id", "must not be empty"},
		{topic, strings.Repeat("x", 1025), "", "id", "must be at most 1024 bytes in UTF-8"},
		{topic + "{x}", "a", "", "topic", "must not contain '{' or '}'"},
	} {
		var invalid *InvalidArgument
		ok, err := c.Abort(ctx, b.topic, b.id, b.reason)
		if ok || !errors.As(err, &invalid) || invalid.Field != b.field || invalid.Message != b.message {
			t.Errorf("abort %q %.20q: want %s: %s, got %v", b.id, b.reason, b.field, b.message, err)
		}
	}
	if job, err := c.Get(ctx, topic, "a"); job == nil || err != nil {
		t.Fatalf("the job changed: %v %v", job, err)
	}
	// characters are runes, as Python's are code points: 40000 of 4 bytes are within the limit
	if ok, err := c.Abort(ctx, topic, "a", strings.Repeat("\U0001F600", 40_000)); !ok || err != nil {
		t.Fatalf("a long reason: %v %v", ok, err)
	}
	if _, _, detail := lastEvent(t, c, topic, "a"); detail != strings.Repeat("\U0001F600", 50) {
		t.Errorf("the detail keeps 200 bytes: %q", detail)
	}
}

// TestAbortAfterNoscript: Abort recovers from NOSCRIPT (a restarted server), by itself and in
// the refill pipeline of an occurrence. The client's delete.lua is made one the server has
// never loaded (no SCRIPT FLUSH: other test processes may share the server).
func TestAbortAfterNoscript(t *testing.T) {
	now := t0
	c, topic := scheduleClient(t, &now)
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "a", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Schedule(ctx, topic, "m", []byte("b"), ScheduleOptions{EveryMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	occurrence := "m@" + time.UnixMilli(s.NextRunAtMs).UTC().Format("2006-01-02T15:04:05Z")
	original := c.Scripts["delete"].Source
	for i, id := range []string{"a", occurrence} {
		unloaded, err := ParseScript("delete", fmt.Sprintf("%s\n-- %s %d", original, topic, i))
		if err != nil {
			t.Fatal(err)
		}
		c.Scripts["delete"] = unloaded
		if exists, _ := redis.Ints(c.doPlain(ctx, "SCRIPT", "EXISTS", unloaded.lua.Hash())); len(exists) != 1 || exists[0] != 0 {
			t.Fatalf("the script is loaded already: %v", exists)
		}
		if ok, err := c.Abort(ctx, topic, id, ""); !ok || err != nil {
			t.Fatalf("abort %s after NOSCRIPT: %v %v", id, ok, err)
		}
		if outcome, _, _ := lastEvent(t, c, topic, id); outcome != "aborted" {
			t.Errorf("%s: %q", id, outcome)
		}
	}
}

// TestAbortSkipsOneRun: aborting the pending occurrence skips that run and reads aborted; a
// running one ends that run alone (its successor was put when it was leased); 60 aborts in a
// row are more than the 48 cron times held, so Abort refills them, as Delete does.
func TestAbortSkipsOneRun(t *testing.T) {
	now := t0 + 30_000
	c, topic := scheduleClient(t, &now)
	ctx := context.Background()
	if _, err := c.Schedule(ctx, topic, "m", []byte("b"), ScheduleOptions{Cron: "* * * * *"}); err != nil {
		t.Fatal(err)
	}
	id := func(minute int64) string {
		return "m@" + time.UnixMilli(t0+minute*60_000).UTC().Format("2006-01-02T15:04:05Z")
	}
	expect := func(next, last int64) {
		t.Helper()
		read, err := c.GetSchedule(ctx, topic, "m")
		if err != nil || read.NextRunAtMs != t0+next*60_000 || read.LastRunAtMs != t0+last*60_000 {
			t.Fatalf("want next minute %d, last %d: %+v %v", next, last, read, err)
		}
	}
	if ok, err := c.Abort(ctx, topic, id(1), "holiday"); !ok || err != nil {
		t.Fatalf("abort the pending occurrence: %v %v", ok, err)
	}
	if outcome, kind, detail := lastEvent(t, c, topic, id(1)); outcome != "aborted" || kind != "aborted" || detail != "holiday" {
		t.Errorf("history: %q %q %q", outcome, kind, detail)
	}
	expect(2, 1)
	now = t0 + 120_000
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	if err != nil || len(jobs) != 1 || jobs[0].ID != id(2) {
		t.Fatalf("reserve: %v %v", jobs, err)
	}
	if ok, err := c.Abort(ctx, topic, id(2), ""); !ok || err != nil {
		t.Fatalf("abort the running occurrence: %v %v", ok, err)
	}
	expect(3, 2)
	if scheduled, err := redis.Int64(c.doPlain(ctx, "ZCARD", c.Key(topic, "scheduled"))); scheduled != 1 || err != nil {
		t.Errorf("nothing doubled: %d %v", scheduled, err)
	}
	for minute := int64(3); minute <= 62; minute++ {
		if ok, err := c.Abort(ctx, topic, id(minute), ""); err != nil || !ok {
			t.Fatalf("abort minute %d: %v %v", minute, ok, err)
		}
	}
	expect(63, 62)
}
