package redisched

import (
	"context"
	"io"
	"log"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
)

// TestPartitionedTopicRefusesPuts: a topic partitioned by the Python side (its count marked in
// the topic's meta hash) takes no job or schedule of its own; Put and Schedule say so.
func TestPartitionedTopicRefusesPuts(t *testing.T) {
	c, topic := testClient(t, "go-partitioned-")
	ctx := context.Background()
	conn := c.Pool.Get()
	defer conn.Close()
	if _, err := conn.Do("HSET", c.Key(topic, "meta"), "partitions", 3); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if invalidField(err) != "topic" || !strings.Contains(err.Error(), "3 partitions") {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, _, err := c.Put(ctx, topic, "a", []byte("x"), PutOptions{})
	refused("put", err)
	_, _, err = c.Put(ctx, topic, "a", []byte("x"), PutOptions{Replace: true})
	refused("replace", err)
	_, err = c.Schedule(ctx, topic, "s", []byte("x"), ScheduleOptions{EveryMs: 60_000})
	refused("schedule", err)
	_, err = c.Delete(ctx, topic, "a", 0) // it answered false: a cancel by id let the job run
	refused("delete", err)
	_, err = c.Abort(ctx, topic, "a", "")
	refused("abort", err)
	_, err = c.GetSchedule(ctx, topic, "s") // nil: a schedule made over HTTP is in its partition
	refused("get schedule", err)
	_, err = c.Schedules(ctx, topic) // none: a part of the topic's
	refused("schedules", err)
}

// TestPartitionedTopicReadsSaySo: a read of a partitioned topic itself that finds nothing says
// so (it answered nil and no jobs: an app polling Get saw "not found" for a job in its
// partition, and a worker reserving from the topic idled forever); a job the topic itself holds
// (put before the mark) is read and leased where it is.
func TestPartitionedTopicReadsSaySo(t *testing.T) {
	c, topic := testClient(t, "go-partitioned-reads-")
	ctx := context.Background()
	conn := c.Pool.Get()
	defer conn.Close()
	for _, id := range []string{"old", "gone"} {
		if _, _, err := c.Put(ctx, topic, id, []byte("x"), PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Do("HSET", c.Key(topic, "meta"), "partitions", 3); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		if invalidField(err) != "topic" || !strings.Contains(err.Error(), "3 partitions") {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.Get(ctx, topic, "a")
	refused("get", err)
	if job, err := c.Get(ctx, topic, "old"); err != nil || job == nil || job.ID != "old" {
		t.Fatal(job, err)
	}
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatal(jobs, err)
	}
	lease, err := c.Lease(ctx, topic, 5, 0)
	if err != nil || len(lease.Jobs) != 1 {
		t.Fatal(lease, err)
	}
	_, err = c.Reserve(ctx, topic, 5, 0)
	refused("reserve", err)
	_, err = c.Lease(ctx, topic, 5, 0)
	refused("lease", err)
	_, _, err = c.AckAndLease(ctx, topic, append(jobs, lease.Jobs...), 5, 0)
	refused("ack and lease", err)
	_, err = c.Unschedule(ctx, topic, "nightly", 0) // it answered false
	refused("unschedule", err)
	if _, err := conn.Do("HDEL", c.Key(topic, "meta"), "partitions"); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Unschedule(ctx, topic, "nightly", 0); ok || err != nil {
		t.Fatal(ok, err)
	}
	if job, err := c.Get(ctx, topic, "a"); job != nil || err != nil { // a plain topic: as ever
		t.Fatal(job, err)
	}
	if jobs, err := c.Reserve(ctx, topic, 5, 0); len(jobs) != 0 || err != nil {
		t.Fatal(jobs, err)
	}
	if n, err := redis.Int(conn.Do("ZCARD", c.Key(topic, "reserved"))); n != 0 || err != nil {
		t.Fatal("the acks went through:", n, err)
	}
}

// TestWorkerRefusesAPartitionedTopic: Run returns the refusal at once instead of failing
// every lease.
func TestWorkerRefusesAPartitionedTopic(t *testing.T) {
	c, topic := testClient(t, "go-partitioned-worker-")
	conn := c.Pool.Get()
	defer conn.Close()
	if _, err := conn.Do("HSET", c.Key(topic, "meta"), "partitions", 2); err != nil {
		t.Fatal(err)
	}
	handler := func(ctx context.Context, job *Job) error { return nil }
	w, err := NewWorker(c, map[string]Handler{topic: handler},
		Options{IgnoreSignals: true, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Run(context.Background())
	if invalidField(err) != "topic" || !strings.Contains(err.Error(), "2 partitions") {
		t.Fatal(err)
	}
}
