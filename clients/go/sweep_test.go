package redisched

import (
	"context"
	"testing"
	"time"
)

// TestReserveRequeuesFirst: a job whose holder died (its lease timed out) comes back to a
// consumer that only calls Reserve, on the server's clock, at most one sweep a second.
func TestReserveRequeuesFirst(t *testing.T) {
	c, topic := testClient(t, "go-sweep-")
	ctx := context.Background()
	check := checker(t)

	_, _, err := c.Put(ctx, topic, "j", []byte("x"), PutOptions{})
	check(err == nil, "put", err)
	jobs, err := c.Reserve(ctx, topic, 1, 50)
	check(err == nil && len(jobs) == 1, "reserve", jobs, err)
	time.Sleep(100 * time.Millisecond)
	jobs, err = c.Reserve(ctx, topic, 1, 0)
	check(err == nil && len(jobs) == 0, "no second sweep within a second", jobs, err)
	time.Sleep(sweepInterval)
	jobs, err = c.Reserve(ctx, topic, 1, 0)
	check(err == nil && len(jobs) == 1 && jobs[0].ID == "j" && jobs[0].Attempts == 2,
		"the timed-out job, leased again", jobs, err)
}

// TestReserveOnClockDoesNotSweep: a client on its own clock requeues only when told to.
func TestReserveOnClockDoesNotSweep(t *testing.T) {
	c, topic := testClient(t, "go-sweep-clock-")
	now := int64(1_900_000_000_000)
	c.Clock = func() int64 { return now }
	ctx := context.Background()
	check := checker(t)

	_, _, err := c.Put(ctx, topic, "j", []byte("x"), PutOptions{})
	check(err == nil, "put", err)
	jobs, _ := c.Reserve(ctx, topic, 1, 50)
	check(len(jobs) == 1, "reserve", jobs)
	now += 10_000
	jobs, err = c.Reserve(ctx, topic, 1, 0)
	check(err == nil && len(jobs) == 0, "no sweep on a client's clock", jobs, err)
	_, err = c.Requeue(ctx, topic, 10)
	check(err == nil, "requeue", err)
	jobs, _ = c.Reserve(ctx, topic, 1, 0)
	check(len(jobs) == 1 && jobs[0].Attempts == 2, "after requeue", jobs)
}
