package redisched

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Lease is reserve.lua's reply: the jobs leased, the server time, and when to look again.
type Lease struct {
	NowMs         int64
	NextDueMs     int64 // run_at of the earliest scheduled job, 0: none
	NextTimeoutMs int64 // the earliest reservation deadline, 0: none
	Jobs          []*Job
}

func checkTopic(topic string) error { return ValidateTopic(topic) }

func optionalMs(v any) int64 {
	ms, _ := redis.Int64(v, nil)
	if ms < 0 {
		return 0
	}
	return ms
}

func (c *Client) parseLease(topic string, reply any) (*Lease, error) {
	r, err := redis.Values(reply, nil)
	if err != nil {
		return nil, err
	}
	if len(r) < 3 {
		return nil, fmt.Errorf("redisched: a reserve reply of %d entries", len(r))
	}
	if err := leasedNothing(topic, r); err != nil {
		return nil, err
	}
	lease := &Lease{NowMs: optionalMs(r[0]), NextDueMs: optionalMs(r[1]), NextTimeoutMs: optionalMs(r[2])}
	for _, raw := range r[3:] {
		job, err := c.parseJob(topic, raw)
		if err != nil {
			return nil, err
		}
		lease.Jobs = append(lease.Jobs, job)
	}
	return lease, nil
}

// leasedNothing is topicPartitioned for a reserve.lua reply that leased nothing from a topic
// spread over partitions: the partition count, an integer, where the jobs would be.
func leasedNothing(topic string, r []any) error {
	if len(r) == 4 {
		if count, ok := r[3].(int64); ok {
			return topicPartitioned(topic, count)
		}
	}
	return nil
}

// partitionCount is the count of a topic spread over partitions (its meta's mark, set by the
// Python side), 0 for a plain topic.
func (c *Client) partitionCount(ctx context.Context, topic string) (int64, error) {
	conn, err := c.conn(ctx, topic)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	count, err := redis.Int64(conn.Do("HGET", c.Key(topic, "meta"), "partitions"))
	if err == redis.ErrNil {
		return 0, nil
	}
	return count, err
}

func (c *Client) leaseArgs(count, ttrMs int64) Args {
	return Args{"now_ms": c.now(), "count": count, "ttr_ms": opt(ttrMs), "promote_limit": 1000,
		"times": ""}
}

// checkDone refuses, before anything is sent, a job of done no reservation could be acked with
// (see checkAckable), as an *InvalidArgument naming it (done[i]).
func checkDone(done []*Job) error {
	for i, job := range done {
		if err := checkAckable(job, fmt.Sprintf("done[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Client) ackArgs(done []*Job) Args {
	ids, tokens, results := make([]any, len(done)), make([]any, len(done)), make([]any, len(done))
	for i, job := range done {
		ids[i], tokens[i], results[i] = job.ID, job.Token, job.Result
	}
	return Args{"now_ms": c.now(), "id": ids, "token": tokens, "result": results}
}

// Lease is Reserve with the times a consumer sleeps until.
func (c *Client) Lease(ctx context.Context, topic string, count, ttrMs int64) (*Lease, error) {
	if err := checkLease(count, ttrMs); err != nil {
		return nil, err
	}
	r, err := c.Call(ctx, "reserve", topic, c.leaseArgs(count, ttrMs))
	if err != nil {
		return nil, err
	}
	return c.parseLease(topic, r)
}

// AckMany acks finished jobs of one topic; one bool per job (false: stale token). Each job is
// checked first (an *InvalidArgument naming it, and nothing is sent); none: an empty result
// without a call.
func (c *Client) AckMany(ctx context.Context, topic string, done []*Job) ([]bool, error) {
	if err := checkTopicArg(topic); err != nil {
		return nil, err
	}
	if err := checkDone(done); err != nil {
		return nil, err
	}
	if len(done) == 0 {
		return []bool{}, nil
	}
	replies, err := c.withRefill(ctx, topic, []Step{{Script: "ack", Args: c.ackArgs(done)}})
	if err != nil {
		return nil, err
	}
	return acked(replies[0])
}

func acked(reply any) ([]bool, error) {
	statuses, err := redis.Int64s(reply, nil)
	out := make([]bool, len(statuses))
	for i, s := range statuses {
		out[i] = s == 1
	}
	return out, err
}

// AckAndLease acks finished jobs (each keeping its Result) and leases up to count more in one
// round trip (a pipeline); cron schedules that ran low are refilled after. Every argument is
// checked (as AckMany's and Lease's) before anything is sent.
func (c *Client) AckAndLease(ctx context.Context, topic string, done []*Job, count, ttrMs int64) (*Lease, []bool, error) {
	if err := checkTopicArg(topic); err != nil {
		return nil, nil, err
	}
	if err := checkLease(count, ttrMs); err != nil {
		return nil, nil, err
	}
	if err := checkDone(done); err != nil {
		return nil, nil, err
	}
	var steps []Step
	if len(done) > 0 {
		steps = append(steps, Step{Script: "ack", Args: c.ackArgs(done)})
	}
	replies, err := c.withRefill(ctx, topic, append(steps, Step{Script: "reserve", Args: c.leaseArgs(count, ttrMs)}))
	if err != nil {
		return nil, nil, err
	}
	var ok []bool
	if len(done) > 0 {
		if ok, err = acked(replies[0]); err != nil {
			return nil, nil, err
		}
	}
	lease, err := c.parseLease(topic, replies[len(replies)-1])
	return lease, ok, err
}

// maxLimit is the most jobs one Requeue moves, as the Python client's requeue limit.
const maxLimit = 10_000

// Requeue returns up to limit (1 to 10000) timed-out reservations to the queue (or to dead); the
// next deadline (0: none).
func (c *Client) Requeue(ctx context.Context, topic string, limit int64) (int64, error) {
	next, _, err := c.requeue(ctx, topic, limit)
	return next, err
}

// requeue is Requeue that also says how many reservations it ended (each one's holder was sent
// a cancel message).
func (c *Client) requeue(ctx context.Context, topic string, limit int64) (next, ended int64, err error) {
	if err := checkTopicArg(topic); err != nil {
		return 0, 0, err
	}
	if err := checkRange(limit, "limit", 1, maxLimit); err != nil {
		return 0, 0, err
	}
	replies, err := c.withRefill(ctx, topic, []Step{{Script: "requeue", Args: Args{"now_ms": c.now(), "limit": limit}}})
	if err != nil {
		return 0, 0, err
	}
	r, err := redis.Int64s(replies[0], nil)
	if err != nil {
		return 0, 0, err
	}
	return optionalMs(r[2]), r[0] + r[1], nil
}

// ReleaseJob is Release with unstarted: a job leased but handed to no one gets its attempt back.
func (c *Client) ReleaseJob(ctx context.Context, job *Job, delayMs int64, errorText string, unstarted bool) (string, error) {
	if err := checkReserved(job, errorText, "errorText"); err != nil {
		return "", err
	}
	if err := checkRange(delayMs, "delayMs", 0, maxDelayMs); err != nil {
		return "", err
	}
	refund := 0
	if unstarted {
		refund = 1
	}
	replies, err := c.withRefill(ctx, job.Topic, []Step{{Script: "release", Args: Args{"now_ms": c.now(),
		"id": job.ID, "token": job.Token, "delay_ms": delayMs, "error": errorText, "refund": refund}}})
	if err != nil {
		return "", err
	}
	r, err := redis.Values(replies[0], nil)
	if err != nil {
		return "", err
	}
	if status, _ := redis.Int64(r[0], nil); status == 0 {
		return "", ErrStale
	}
	return redis.String(r[1], nil)
}

// TopicBackoff is the topic's retry backoff (meta backoff_ms, backoff_max_ms), else DefaultBackoff.
func (c *Client) TopicBackoff(ctx context.Context, topic string) (Backoff, error) {
	conn, err := c.conn(ctx, topic)
	if err != nil {
		return Backoff{}, err
	}
	defer conn.Close()
	r, err := redis.Values(conn.Do("HMGET", c.Key(topic, "meta"), "backoff_ms", "backoff_max_ms"))
	if err != nil {
		return Backoff{}, err
	}
	b := DefaultBackoff
	if ms, err := redis.Int64(r[0], nil); err == nil {
		b.Base = time.Duration(ms) * time.Millisecond
	}
	if ms, err := redis.Int64(r[1], nil); err == nil {
		b.Max = time.Duration(ms) * time.Millisecond
	}
	if b.Max < b.Base {
		b.Max = b.Base
	}
	return b, nil
}

// Step is one script call of a pipeline, or (Command set) one plain command.
type Step struct {
	Script  string
	Args    Args
	Command []any // a command name and its arguments (the keys must be the topic's)
}

// Pipeline runs several scripts of one topic in one round trip (not a transaction); their
// replies in order. A step answered NOSCRIPT (a restarted server) is sent again with EVAL: it
// did not run, so sending it again is safe.
func (c *Client) Pipeline(ctx context.Context, topic string, steps []Step) ([]any, error) {
	type call struct {
		s    *Script
		args []any
	}
	calls := make([]call, len(steps))
	for i, step := range steps {
		if step.Command != nil {
			calls[i] = call{nil, step.Command}
			continue
		}
		s, keysAndArgs, err := c.prepare(step.Script, topic, step.Args)
		if err != nil {
			return nil, err
		}
		calls[i] = call{s, keysAndArgs}
	}
	conn, err := c.conn(ctx, topic)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	for _, cl := range calls {
		var err error
		if cl.s == nil {
			err = conn.Send(cl.args[0].(string), cl.args[1:]...)
		} else {
			err = cl.s.lua.SendHash(conn, cl.args...)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, err
	}
	replies := make([]any, len(calls))
	errs := make([]error, len(calls))
	for i := range calls {
		replies[i], errs[i] = conn.Receive()
		if e, ok := replies[i].(redis.Error); ok && errs[i] == nil {
			errs[i] = e
		}
	}
	for i, cl := range calls {
		var e redis.Error
		if cl.s != nil && errors.As(errs[i], &e) && strings.HasPrefix(string(e), "NOSCRIPT") {
			replies[i], errs[i] = cl.s.lua.Do(conn, cl.args...)
		}
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return replies, nil
}
