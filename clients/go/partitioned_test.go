package redisched

import (
	"context"
	"strings"
	"testing"
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
	if job, err := c.Get(ctx, topic, "a"); job != nil || err != nil {
		t.Fatal(job, err)
	}
}
