package redisched

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() // a Tuesday

func scheduleClient(t *testing.T, now *int64) (*Client, string) {
	c, topic := testClient(t, "go-sched-")
	c.Clock = func() int64 { return *now }
	return c, topic
}

// testClient is a client of the redis-server at REDISCHED_TEST_REDIS_URL (one the test run
// owns), closed when the test ends, and a topic of its own named topicPrefix + 8 hex digits.
func testClient(t *testing.T, topicPrefix string) (*Client, string) {
	t.Helper()
	url := os.Getenv("REDISCHED_TEST_REDIS_URL")
	if url == "" {
		t.Fatal("set REDISCHED_TEST_REDIS_URL to a redis-server you own")
	}
	pool := NewPool(url)
	t.Cleanup(func() { pool.Close() })
	c, err := New(pool, "")
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 4)
	rand.Read(random)
	return c, topicPrefix + hex.EncodeToString(random)
}

// TestIntervalSchedule: create, read, list, replace with IfVersion, delete, as the Python client.
func TestIntervalSchedule(t *testing.T) {
	now := t0 + 400
	c, topic := scheduleClient(t, &now)
	ctx := context.Background()
	made, err := c.Schedule(ctx, topic, "tick", []byte("payload"), ScheduleOptions{EveryMs: 60_000, Priority: 3, TTRMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	want := Schedule{Topic: topic, ID: "tick", Version: 1, EveryMs: 60_000, TZ: "UTC", NextRunAtMs: t0 + 1000,
		Priority: 3, TTRMs: 5000, Body: []byte("payload")}
	if made.ID != want.ID || made.Version != 1 || made.Cron != "" || made.EveryMs != want.EveryMs || made.TZ != "UTC" ||
		made.NextRunAtMs != want.NextRunAtMs || made.StartAtMs != 0 || made.LastRunAtMs != 0 || made.Priority != 3 ||
		made.TTRMs != 5000 || made.MaxAttempts != 25 || string(made.Body) != "payload" {
		t.Fatalf("schedule: %+v", made)
	}
	now = t0 + 1000
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	if err != nil || len(jobs) != 1 || jobs[0].ID != "tick@2030-01-01T00:00:01Z" {
		t.Fatalf("reserve: %v %v", jobs, err)
	}
	read, err := c.GetSchedule(ctx, topic, "tick")
	if err != nil || read.NextRunAtMs != t0+61_000 || read.LastRunAtMs != t0+1000 {
		t.Fatalf("get: %+v %v", read, err)
	}
	var conflict *VersionConflict
	if _, err := c.Schedule(ctx, topic, "tick", []byte("x"), ScheduleOptions{EveryMs: 5000, IfVersion: 7}); !errors.As(err, &conflict) || conflict.Current != 1 {
		t.Fatalf("if_version 7: %v", err)
	}
	if s, err := c.Schedule(ctx, topic, "tick", []byte("x"), ScheduleOptions{EveryMs: 5000, IfVersion: 1}); err != nil || s.Version != 2 {
		t.Fatalf("replace: %+v %v", s, err)
	}
	if _, err := c.Schedule(ctx, topic, "a-first", []byte("y"), ScheduleOptions{EveryMs: 1000}); err != nil {
		t.Fatal(err)
	}
	list, err := c.Schedules(ctx, topic)
	if err != nil || len(list) != 2 || list[0].ID != "a-first" || list[1].ID != "tick" {
		t.Fatalf("schedules: %v %v", list, err)
	}
	if _, err := c.Unschedule(ctx, topic, "tick", 1); !errors.As(err, &conflict) {
		t.Fatalf("unschedule if_version 1: %v", err)
	}
	if ok, err := c.Unschedule(ctx, topic, "tick", 2); !ok || err != nil {
		t.Fatalf("unschedule: %v %v", ok, err)
	}
	if ok, err := c.Unschedule(ctx, topic, "tick", 0); ok || err != nil {
		t.Fatalf("unschedule again: %v %v", ok, err)
	}
	if s, err := c.GetSchedule(ctx, topic, "tick"); s != nil || err != nil {
		t.Fatalf("get after unschedule: %v %v", s, err)
	}
	if list, err := c.Schedules(ctx, topic+"-none"); len(list) != 0 || err != nil {
		t.Fatalf("no schedules: %v %v", list, err)
	}
}

// TestCronScheduleRefill: 48 times in the schedule's zone, topped up by the ack that leaves 14.
// TestDeleteSkipsOneRun: deleting the pending occurrence puts the next one, as the Python
// client; 60 deletes in a row are more than the 48 cron times held, so Delete refills them,
// and a replace then goes on after the last skipped run (its first 48 times from now all come
// before it: schedule.lua names the time, and Schedule sends the times after it).
func TestDeleteSkipsOneRun(t *testing.T) {
	now := t0 + 30_000
	c, topic := scheduleClient(t, &now)
	ctx := context.Background()
	if _, err := c.Schedule(ctx, topic, "m", []byte("b"), ScheduleOptions{Cron: "* * * * *"}); err != nil {
		t.Fatal(err)
	}
	id := func(ms int64) string {
		return "m@" + time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05Z")
	}
	for minute := int64(1); minute <= 60; minute++ {
		if ok, err := c.Delete(ctx, topic, id(t0+minute*60_000), 0); err != nil || !ok {
			t.Fatalf("delete minute %d: %v %v", minute, ok, err)
		}
	}
	read, err := c.GetSchedule(ctx, topic, "m")
	if err != nil || read.NextRunAtMs != t0+61*60_000 || read.LastRunAtMs != t0+60*60_000 {
		t.Fatalf("get: %+v %v", read, err)
	}
	replaced, err := c.Schedule(ctx, topic, "m", []byte("new"), ScheduleOptions{Cron: "* * * * *"})
	if err != nil || replaced.Version != 2 || replaced.NextRunAtMs != t0+61*60_000 {
		t.Fatalf("replace: %+v %v", replaced, err)
	}
	now = t0 + 61*60_000
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	if err != nil || len(jobs) != 1 || jobs[0].ID != id(t0+61*60_000) || string(jobs[0].Body) != "new" {
		t.Fatalf("reserve: %v %v", jobs, err)
	}
}

func TestCronScheduleRefill(t *testing.T) {
	now := t0
	c, topic := scheduleClient(t, &now)
	ctx := context.Background()
	made, err := c.Schedule(ctx, topic, "daily", []byte("b"), ScheduleOptions{Cron: "30  9 * * *", TZ: "Europe/Berlin"})
	if err != nil {
		t.Fatal(err)
	}
	if made.Cron != "30 9 * * *" || made.NextRunAtMs != time.Date(2030, 1, 1, 8, 30, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("schedule: %+v", made)
	}
	held := func() (int64, int64) {
		r, err := redis.Values(c.Call(ctx, "get_schedule", topic, Args{"id": []any{"daily"}}))
		if err != nil {
			t.Fatal(err)
		}
		entry, _ := redis.Values(r[0], nil)
		left, _ := redis.Int64(entry[13], nil)
		last, _ := redis.Int64(entry[14], nil)
		return left, last
	}
	if left, _ := held(); left != 47 {
		t.Fatalf("times left: %d", left)
	}
	for day := int64(0); day < 33; day++ {
		now = made.NextRunAtMs + day*86_400_000
		jobs, err := c.Reserve(ctx, topic, 1, 0)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("occurrence %d: %v %v", day, jobs, err)
		}
		if err := c.AckWith(ctx, jobs[0], map[string]int64{"day": day}); err != nil {
			t.Fatal(err)
		}
	}
	left, last := held()
	if left != 47 || last != time.Date(2030, 3, 22, 8, 30, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("after the refill: %d left, last %d", left, last)
	}
	if n, _ := redis.Int64(c.doPlain(ctx, "ZCARD", c.Key(topic, "refill"))); n != 0 {
		t.Fatalf("refill set: %d", n)
	}
}

// TestCronTimes: zones, end_at and expressions that never fire, as the Python client.
func TestCronTimes(t *testing.T) {
	berlin, err := TimeZone("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ms := func(y int, m time.Month, d, h int) int64 { return time.Date(y, m, d, h, 0, 0, 0, time.UTC).UnixMilli() }
	got := CronTimes("0 12 * * *", berlin, ms(2030, 3, 30, 0), 2, 0)
	if len(got) != 2 || got[0] != ms(2030, 3, 30, 11) || got[1] != ms(2030, 3, 31, 10) {
		t.Fatalf("Berlin noon: %v", got)
	}
	if got := CronTimes("0 0 1 1 *", time.UTC, t0, 5, ms(2031, 6, 1, 0)); len(got) != 1 || got[0] != ms(2031, 1, 1, 0) {
		t.Fatalf("until end_at: %v", got)
	}
	// DST as the Python client (recurrence.py): these are its cron_times for Europe/Berlin.
	for _, c := range []struct {
		expr  string
		after int64
		want  []int64
	}{
		{"30 2 * * *", ms(2026, 3, 28, 0), []int64{ms(2026, 3, 28, 1) + 1_800_000, ms(2026, 3, 29, 1), ms(2026, 3, 30, 0) + 1_800_000}},
		{"30 2 * * *", ms(2026, 10, 24, 0), []int64{ms(2026, 10, 24, 0) + 1_800_000, ms(2026, 10, 25, 0) + 1_800_000, ms(2026, 10, 26, 1) + 1_800_000}},
		{"0 3 * * *", ms(2026, 3, 28, 0), []int64{ms(2026, 3, 28, 2), ms(2026, 3, 29, 1), ms(2026, 3, 30, 1)}},
		{"0,30 2 * * *", ms(2026, 3, 28, 0), []int64{ms(2026, 3, 28, 1), ms(2026, 3, 28, 1) + 1_800_000, ms(2026, 3, 29, 1), ms(2026, 3, 30, 0)}},
		{"*/30 * * * *", ms(2026, 10, 25, 0), []int64{ms(2026, 10, 25, 0) + 1_800_000, ms(2026, 10, 25, 1), ms(2026, 10, 25, 1) + 1_800_000, ms(2026, 10, 25, 2)}},
	} {
		got := CronTimes(c.expr, berlin, c.after, len(c.want), 0)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %v", c.expr, got)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("%s: %v, not %v", c.expr, got, c.want)
			}
		}
	}
}

// TestScheduleBadArguments: each bad option names its field and nothing is stored.
func TestScheduleBadArguments(t *testing.T) {
	now := t0
	c, topic := scheduleClient(t, &now)
	ctx := context.Background()
	for _, bad := range []struct {
		o     ScheduleOptions
		field string
	}{
		{ScheduleOptions{EveryMs: 1000, Cron: "* * * * *"}, "cron"}, {ScheduleOptions{}, "cron"},
		{ScheduleOptions{EveryMs: 1500}, "EveryMs"}, {ScheduleOptions{EveryMs: 500}, "EveryMs"},
		{ScheduleOptions{EveryMs: -1000}, "EveryMs"}, {ScheduleOptions{Cron: "* * * *"}, "cron"},
		{ScheduleOptions{Cron: "61 * * * *"}, "cron"}, {ScheduleOptions{Cron: "0 0 30 2 *"}, "cron"},
		{ScheduleOptions{Cron: "@daily"}, "cron"}, {ScheduleOptions{Cron: "* * * * *", TZ: "Mars/Base"}, "tz"},
		{ScheduleOptions{Cron: strings.Repeat("0,", 100_000) + "0 * * * *"}, "cron"},
		{ScheduleOptions{Cron: "* * * * *", TZ: "../etc/passwd"}, "tz"}, {ScheduleOptions{Cron: "* * * * *", TZ: "Local"}, "tz"},
		// tz-database files that are no zone every glue knows (Node's Intl refuses them)
		{ScheduleOptions{Cron: "* * * * *", TZ: "localtime"}, "tz"}, {ScheduleOptions{Cron: "* * * * *", TZ: "posixrules"}, "tz"},
		{ScheduleOptions{Cron: "* * * * *", TZ: "Factory"}, "tz"}, {ScheduleOptions{Cron: "* * * * *", TZ: "posix/Europe/Berlin"}, "tz"},
		{ScheduleOptions{Cron: "* * * * *", TZ: "right/UTC"}, "tz"},
		{ScheduleOptions{EveryMs: 1000, Priority: 1 << 40}, "Priority"}, {ScheduleOptions{EveryMs: 1000, TTRMs: -1}, "TTRMs"},
		{ScheduleOptions{EveryMs: 1000, MaxAttempts: -1}, "MaxAttempts"}, {ScheduleOptions{EveryMs: 1000, IfVersion: -1}, "IfVersion"},
		{ScheduleOptions{EveryMs: 1000, StartAtMs: -5}, "StartAtMs"},
		{ScheduleOptions{EveryMs: 1000, StartAtMs: t0, EndAtMs: t0}, "EndAtMs"},
		// already past by the scripts' clock (here the test's): schedule.lua refuses it
		{ScheduleOptions{EveryMs: 1000, EndAtMs: t0 - 1000}, "EndAtMs"}, {ScheduleOptions{Cron: "* * * * *", EndAtMs: t0}, "EndAtMs"},
	} {
		var invalid *InvalidArgument
		if _, err := c.Schedule(ctx, topic, "x", []byte("b"), bad.o); !errors.As(err, &invalid) || invalid.Field != bad.field {
			t.Fatalf("%+v: %v", bad.o, err)
		}
	}
	var invalid *InvalidArgument
	if _, err := c.Schedule(ctx, topic, "", []byte("b"), ScheduleOptions{EveryMs: 1000}); !errors.As(err, &invalid) || invalid.Field != "id" {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := c.Schedule(ctx, topic, strings.Repeat("x", 1004), []byte("b"), ScheduleOptions{EveryMs: 1000}); !errors.As(err, &invalid) {
		t.Fatalf("long id: %v", err)
	}
	if _, err := c.Schedule(ctx, topic, "x", make([]byte, DefaultMaxBodySize+1), ScheduleOptions{EveryMs: 1000}); !errors.As(err, &invalid) || invalid.Field != "body" {
		t.Fatalf("big body: %v", err)
	}
	if _, err := c.Unschedule(ctx, topic, "x", -1); !errors.As(err, &invalid) || invalid.Field != "IfVersion" {
		t.Fatalf("unschedule if_version: %v", err)
	}
	if err := c.AckWith(ctx, &Job{Topic: topic, ID: "x", Token: "1"}, make(chan int)); !errors.As(err, &invalid) || invalid.Field != "result" {
		t.Fatalf("ack result: %v", err)
	}
	if n, _ := redis.Int64(c.doPlain(ctx, "EXISTS", c.Key(topic, "jobs"), c.Key(topic, "schedules"))); n != 0 {
		t.Fatalf("stored: %d keys", n)
	}
}

// TestRefillReadsAStoredNonZone: a TZ refused for new schedules (Factory) that an older
// version stored still gets its cron times, or the schedule would stop once they ran out.
func TestRefillReadsAStoredNonZone(t *testing.T) {
	entry := []any{[]byte("f"), int64(1), []byte("* * * * *"), []byte("Factory"), int64(0), int64(0),
		int64(0), t0, int64(0), int64(0), int64(60000), int64(25), []byte("b"), int64(0), t0}
	if times := refillTimes(entry, t0); len(times) == 0 {
		t.Fatal("no times for a schedule stored in Factory")
	}
}
