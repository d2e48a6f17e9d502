package redisched

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// checker is a test's assertion: it fails the test naming what and showing got unless ok.
func checker(t *testing.T) func(ok bool, what string, got ...any) {
	return func(ok bool, what string, got ...any) {
		t.Helper()
		if !ok {
			t.Fatalf("%s: got %v", what, got)
		}
	}
}

// TestClientLifecycle drives the typed methods on a fixed clock.
func TestClientLifecycle(t *testing.T) {
	c, topic := testClient(t, "go-glue-")
	now := int64(1_900_000_000_000)
	c.Clock = func() int64 { return now }
	ctx := context.Background()
	check := checker(t)

	status, version, err := c.Put(ctx, topic, "j", []byte{0, 255}, PutOptions{DelayMs: 1000, MaxAttempts: 5})
	check(err == nil && status == "created" && version == 1, "put", status, version, err)
	status, _, err = c.Put(ctx, topic, "j", []byte("other"), PutOptions{})
	check(err == nil && status == "exists", "put again", status, err)
	_, _, err = c.Put(ctx, topic, "j", []byte("x"), PutOptions{Replace: true, IfVersion: 7})
	var conflict *VersionConflict
	check(errors.As(err, &conflict) && conflict.Current == 1, "CAS", err)
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	check(err == nil && len(jobs) == 0, "reserve before due", jobs, err)

	now += 1000
	jobs, err = c.Reserve(ctx, topic, 1, 2000)
	check(err == nil && len(jobs) == 1, "reserve", jobs, err)
	job := jobs[0]
	check(job.State == "reserved" && job.Attempts == 1 && job.MaxAttempts == 5 &&
		bytes.Equal(job.Body, []byte{0, 255}) && job.ReservedUntilMs == now+2000, "job", *job)
	until, err := c.Touch(ctx, job, 9000)
	check(err == nil && until == now+9000, "touch", until, err)
	state, err := c.Release(ctx, job, 0, "flaky")
	check(err == nil && state == "ready", "release", state, err)
	check(errors.Is(c.Ack(ctx, job), ErrStale), "ack after release")

	jobs, _ = c.Reserve(ctx, topic, 1, 0)
	check(len(jobs) == 1 && jobs[0].LastError == "flaky", "last error", jobs)
	check(c.Bury(ctx, jobs[0], "broken") == nil, "bury")
	got, err := c.Get(ctx, topic, "j")
	check(err == nil && got.State == "dead" && got.LastError == "broken", "get dead", got, err)
	kicked, err := c.Call(ctx, "kick", topic, Args{"now_ms": now, "id": "j", "limit": 1})
	check(err == nil && kicked == int64(1), "kick", kicked, err)
	jobs, _ = c.Reserve(ctx, topic, 1, 0)
	check(len(jobs) == 1 && c.Ack(ctx, jobs[0]) == nil, "ack", jobs)
	got, err = c.Get(ctx, topic, "j")
	check(err == nil && got == nil, "gone", got, err)

	c.Put(ctx, topic, "d", []byte("x"), PutOptions{})
	deleted, err := c.Delete(ctx, topic, "d", 2)
	check(!deleted && errors.As(err, &conflict), "delete CAS", deleted, err)
	deleted, err = c.Delete(ctx, topic, "d", 1)
	check(deleted && err == nil, "delete", deleted, err)
	_, err = c.Call(ctx, "get", "bad{topic}", Args{"now_ms": "", "id": "x"})
	check(err != nil, "a topic with braces is refused", err)
}

// TestBadJobArguments: a bad argument to Put, Get, Delete, Reserve, Lease, Touch or Release is
// an *InvalidArgument naming it (the Python client's checks); nothing is sent, so the stored job
// and the topics set stay as they were.
func TestBadJobArguments(t *testing.T) {
	c, topic := testClient(t, "go-glue-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "kept", []byte("original"), PutOptions{DelayMs: 5000, Priority: 3}); err != nil {
		t.Fatal(err)
	}
	before, _ := c.Get(ctx, topic, "kept")
	bad := []struct {
		id    string
		body  []byte
		o     PutOptions
		field string
	}{
		{"", nil, PutOptions{}, "id"}, {strings.Repeat("x", 1025), nil, PutOptions{}, "id"},
		{"a\xff", nil, PutOptions{}, "id"}, {"kept", make([]byte, DefaultMaxBodySize+1), PutOptions{}, "body"},
		{"kept", nil, PutOptions{DelayMs: -1}, "DelayMs"}, {"kept", nil, PutOptions{RunAtMs: -1}, "RunAtMs"},
		{"kept", nil, PutOptions{TTRMs: -1}, "TTRMs"}, {"kept", nil, PutOptions{TTRMs: 366 * 86_400_000}, "TTRMs"},
		{"kept", nil, PutOptions{Priority: 1 << 31}, "Priority"}, {"kept", nil, PutOptions{MaxAttempts: -1}, "MaxAttempts"},
		{"kept", nil, PutOptions{Replace: true, IfVersion: -1}, "IfVersion"},
		{"kept", nil, PutOptions{Replace: true, IfVersion: 1 << 53}, "IfVersion"},
	}
	var invalid *InvalidArgument
	for _, b := range bad {
		if _, _, err := c.Put(ctx, topic, b.id, b.body, b.o); !errors.As(err, &invalid) || invalid.Field != b.field {
			t.Errorf("put %q %+v: want an InvalidArgument for %s, got %v", b.id, b.o, b.field, err)
		}
	}
	// a busy topic's versions pass 2^31 (version_floor): such an IfVersion is compared, not refused
	var conflict *VersionConflict
	if _, _, err := c.Put(ctx, topic, "kept", nil, PutOptions{Replace: true, IfVersion: 1 << 40}); !errors.As(err, &conflict) {
		t.Errorf("put with IfVersion 2^40: want a VersionConflict, got %v", err)
	}
	braces := topic + "{x}"
	if _, _, err := c.Put(ctx, braces, "j", nil, PutOptions{}); !errors.As(err, &invalid) || invalid.Field != "topic" {
		t.Errorf("topic with braces: %v", err)
	}
	if member, _ := c.doPlain(ctx, "SISMEMBER", c.Prefix+":topics", braces); member != int64(0) {
		t.Errorf("a refused topic was added to the topics set")
	}
	for what, err := range map[string]error{
		"get":           func() error { _, err := c.Get(ctx, topic, ""); return err }(),
		"delete":        func() error { _, err := c.Delete(ctx, topic, "", 0); return err }(),
		"delete CAS":    func() error { _, err := c.Delete(ctx, topic, "kept", -2); return err }(),
		"reserve 0":     func() error { _, err := c.Reserve(ctx, topic, 0, 0); return err }(),
		"lease 1001":    func() error { _, err := c.Lease(ctx, topic, 1001, 0); return err }(),
		"reserve ttr":   func() error { _, err := c.Reserve(ctx, topic, 1, -5); return err }(),
		"touch ttr":     func() error { _, err := c.Touch(ctx, &Job{Topic: topic, ID: "kept", Token: "1"}, -1); return err }(),
		"release -1ms":  func() error { _, err := c.Release(ctx, &Job{Topic: topic, ID: "kept", Token: "1"}, -1, ""); return err }(),
		"ack nil":       c.Ack(ctx, nil),
		"ack no token":  c.Ack(ctx, &Job{Topic: topic, ID: "kept"}),
		"ack no id":     c.Ack(ctx, &Job{Topic: topic, Token: "1"}),
		"bury no token": c.Bury(ctx, &Job{Topic: topic, ID: "kept"}, ""),
		"bury reason":   c.Bury(ctx, &Job{Topic: topic, ID: "kept", Token: "1"}, "a\xff"),
		"release text": func() error {
			_, err := c.Release(ctx, &Job{Topic: topic, ID: "kept", Token: "1"}, 0, "a\xff")
			return err
		}(),
		"touch nil": func() error { _, err := c.Touch(ctx, nil, 0); return err }(),
	} {
		if !errors.As(err, &invalid) {
			t.Errorf("%s: want an InvalidArgument, got %v", what, err)
		}
	}
	after, _ := c.Get(ctx, topic, "kept")
	if after == nil || after.Version != before.Version || after.Priority != 3 || string(after.Body) != "original" {
		t.Errorf("the stored job changed: %+v", after)
	}
}

// TestDotNames: "." and ".." are refused as new ids and topics (a URL path resolves them to its
// parent), with the Python client's message; one stored by an older version stays removable.
func TestDotNames(t *testing.T) {
	c, topic := testClient(t, "go-glue-")
	ctx := context.Background()
	const message = "must not be '.' or '..' (a URL path would resolve it to its parent)"
	every := ScheduleOptions{EveryMs: 60_000}
	if _, err := c.doPlain(ctx, "SREM", c.Prefix+":topics", ".", ".."); err != nil { // an earlier run's
		t.Fatal(err)
	}
	for _, dot := range []string{".", ".."} {
		for what, got := range map[string]struct {
			err   error
			field string
		}{
			"put id":         {func() error { _, _, err := c.Put(ctx, topic, dot, nil, PutOptions{}); return err }(), "id"},
			"schedule id":    {func() error { _, err := c.Schedule(ctx, topic, dot, nil, every); return err }(), "id"},
			"put topic":      {func() error { _, _, err := c.Put(ctx, dot, "j", nil, PutOptions{}); return err }(), "topic"},
			"schedule topic": {func() error { _, err := c.Schedule(ctx, dot, "j", nil, every); return err }(), "topic"},
		} {
			var invalid *InvalidArgument
			if !errors.As(got.err, &invalid) || invalid.Field != got.field || invalid.Message != message {
				t.Errorf("%s %q: want an InvalidArgument for %s, got %v", what, dot, got.field, got.err)
			}
		}
		if member, _ := c.doPlain(ctx, "SISMEMBER", c.Prefix+":topics", dot); member != int64(0) {
			t.Errorf("%q was added to the topics set", dot)
		}
		// stored as an older version would have: the script itself takes any id
		if _, err := c.Call(ctx, "put", topic, Args{"now_ms": c.now(), "run_at_ms": "", "delay_ms": 0, "ttr_ms": "",
			"priority": 0, "max_attempts": "", "replace": 0, "if_version": "", "id": []any{dot}, "body": []any{"old"}}); err != nil {
			t.Fatal(err)
		}
		if job, err := c.Get(ctx, topic, dot); err != nil || job == nil || job.ID != dot {
			t.Errorf("get %q: %+v %v", dot, job, err)
		}
		if deleted, err := c.Delete(ctx, topic, dot, 0); !deleted || err != nil {
			t.Errorf("delete %q: %v %v", dot, deleted, err)
		}
	}
}
