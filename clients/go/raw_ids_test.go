package redisched

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// oddID is "bad-" and the byte 0xFF: an id a raw script call may store, which is not UTF-8.
const oddID = "bad-\xff"

// TestRawIDs: a job and a schedule whose ids a raw script call stored as bytes that are not
// UTF-8 are read with those bytes, and every call on them sends the same bytes back.
func TestRawIDs(t *testing.T) {
	c, topic := testClient(t, "go-raw-")
	ctx, check := context.Background(), checker(t) // on the server's clock ("" for now_ms)
	rawPut := func(body string) {
		_, err := c.Call(ctx, "put", topic, Args{"now_ms": "", "run_at_ms": "", "delay_ms": 0,
			"ttr_ms": "", "priority": 0, "max_attempts": "", "replace": 0, "if_version": "",
			"id": []any{oddID}, "body": []any{body}})
		check(err == nil, "raw put", err)
	}
	neighbour := "bad-\ufffd" // what a lossy reader would have named: another job
	_, _, err := c.Put(ctx, topic, neighbour, []byte("n"), PutOptions{DelayMs: 60_000})
	check(err == nil, "put the neighbour", err)

	rawPut("odd")
	got, err := c.Get(ctx, topic, oddID)
	check(err == nil && got != nil && got.ID == oddID, "get", got, err)
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	check(err == nil && len(jobs) == 1 && jobs[0].ID == oddID, "reserve", jobs, err)
	job := jobs[0]
	var payload map[string]any
	check(json.Unmarshal(Payload(job), &payload) == nil && payload["id"] == `bad-\xff`, "payload", payload)
	_, err = c.Touch(ctx, job, 5000)
	check(err == nil, "touch", err)
	state, err := c.Release(ctx, job, 0, "again")
	check(err == nil && state == "ready", "release", state, err)
	jobs, _ = c.Reserve(ctx, topic, 1, 0)
	check(len(jobs) == 1 && c.Bury(ctx, jobs[0], "look") == nil, "bury", jobs)
	kicked, err := c.Call(ctx, "kick", topic, Args{"now_ms": "", "id": oddID, "limit": 1})
	check(err == nil && kicked == int64(1), "kick", kicked, err)
	jobs, _ = c.Reserve(ctx, topic, 1, 0)
	check(len(jobs) == 1 && c.Ack(ctx, jobs[0]) == nil, "ack", jobs)
	got, err = c.Get(ctx, topic, oddID)
	check(err == nil && got == nil, "gone after the ack", got, err)

	rawPut("again")
	lease, err := c.Lease(ctx, topic, 1, 0)
	check(err == nil && len(lease.Jobs) == 1, "lease", lease, err)
	acked, err := c.AckMany(ctx, topic, lease.Jobs)
	check(err == nil && len(acked) == 1 && acked[0], "ack many", acked, err)
	rawPut("third")
	deleted, err := c.Delete(ctx, topic, oddID, 0)
	check(err == nil && deleted, "delete", deleted, err)
	rawPut("fourth")
	aborted, err := c.Abort(ctx, topic, oddID, "wrong")
	check(err == nil && aborted, "abort", aborted, err)

	got, err = c.Get(ctx, topic, neighbour)
	check(err == nil && got != nil && got.State == "scheduled" && got.Version == 1, "the neighbour untouched", got, err)

	// a new job's id must still be UTF-8; an over-long stored id is refused, naming it
	var bad *InvalidArgument
	_, _, err = c.Put(ctx, topic, oddID, []byte("x"), PutOptions{})
	check(errors.As(err, &bad) && bad.Field == "id", "put refuses it", err)
	long := string(make([]byte, maxIDBytes)) + "\xff"
	_, err = c.Get(ctx, topic, long)
	check(errors.As(err, &bad) && bad.Field == "id", "over-long", err)

	// a schedule of such an id: listed, read and removed
	args, err := c.scheduleArgs("valid", []byte("tick"), ScheduleOptions{EveryMs: 60_000}, time.Now().UnixMilli())
	check(err == nil, "schedule args", err)
	args["id"], args["now_ms"] = oddID, ""
	_, err = c.Call(ctx, "schedule", topic, args)
	check(err == nil, "raw schedule", err)
	schedules, err := c.Schedules(ctx, topic)
	check(err == nil && len(schedules) == 1 && schedules[0].ID == oddID, "schedules", schedules, err)
	s, err := c.GetSchedule(ctx, topic, oddID)
	check(err == nil && s != nil && s.ID == oddID, "get schedule", s, err)
	removed, err := c.Unschedule(ctx, topic, oddID, 0)
	check(err == nil && removed, "unschedule", removed, err)
}
