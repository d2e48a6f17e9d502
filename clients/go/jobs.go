package redisched

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
)

// Job is the job array of get.lua (also returned by reserve and pull).
type Job struct {
	Topic           string `json:"topic"`
	ID              string `json:"id"`
	State           string `json:"state"`
	Version         int64  `json:"version"`
	Attempts        int64  `json:"attempts"`
	Priority        int64  `json:"priority"`
	TTRMs           int64  `json:"ttr_ms"`
	MaxAttempts     int64  `json:"max_attempts"` // 0: unlimited
	RunAtMs         int64  `json:"run_at_ms"`
	Token           string `json:"token"`             // set by Reserve only
	ReservedUntilMs int64  `json:"reserved_until_ms"` // 0 unless reserved
	LastError       string `json:"last_error"`
	Body            []byte `json:"body"`            // base64 in JSON
	PendingVersion  int64  `json:"pending_version"` // a replacement waiting for the attempt, or 0
	// Result is what AckMany and AckAndLease keep as the job's result (EncodeResult); the
	// Worker sets it from the handler's return value.
	Result []byte `json:"-"`
	// returned is a ResultHandler's return value (see Returning), encoded into Result on ack.
	returned any
}

func (c *Client) parseJob(topic string, reply any) (*Job, error) {
	r, err := redis.Values(reply, nil)
	if err != nil {
		return nil, err
	}
	if len(r) != len(c.jobFields) {
		return nil, fmt.Errorf("redisched: a job array of %d entries, not %d", len(r), len(c.jobFields))
	}
	at := map[string]any{}
	for i, name := range c.jobFields {
		at[name] = r[i]
	}
	n := func(name string) int64 { v, _ := redis.Int64(at[name], nil); return v }
	s := func(name string) string { v, _ := redis.String(at[name], nil); return v }
	body, _ := redis.Bytes(at["body"], nil)
	return &Job{Topic: topic, ID: s("id"), State: s("state"), Version: n("version"),
		Attempts: n("attempts"), Priority: n("priority"), TTRMs: n("ttr_ms"),
		MaxAttempts: n("max_attempts"), RunAtMs: n("run_at_ms"), Token: s("token"),
		ReservedUntilMs: n("reserved_until_ms"), LastError: s("last_error"), Body: body,
		PendingVersion: n("pending_version")}, nil
}

func (c *Client) now() any {
	if c.Clock == nil {
		return ""
	}
	return c.Clock()
}

func opt(v int64) any {
	if v == 0 {
		return ""
	}
	return v
}

// PutOptions of a put; zero values mean: due now, the topic's ttr and max_attempts, create-only.
// DelayMs or RunAtMs, not both.
type PutOptions struct {
	DelayMs, RunAtMs, TTRMs, Priority, MaxAttempts, IfVersion int64
	Replace                                                   bool
}

// maxDelayMs is the longest delay, as the Python client's validate.MAX_DELAY_MS.
const maxDelayMs = 100 * 365 * 86_400_000

// maxCount is the most jobs one Reserve or Lease takes, as the Python client's validate.MAX_COUNT.
const maxCount = 1000

// maxBodySize is MaxBodySize, or DefaultMaxBodySize when it is 0.
func (c *Client) maxBodySize() int {
	if c.MaxBodySize == 0 {
		return DefaultMaxBodySize
	}
	return c.MaxBodySize
}

// checkPut checks a put's arguments as the Python client does (validate.py): an
// *InvalidArgument naming the first bad one, before anything is sent.
func (c *Client) checkPut(topic, id string, body []byte, o PutOptions) error {
	if err := checkTopicArg(topic); err != nil {
		return err
	}
	if err := checkNewName(topic, "topic"); err != nil {
		return err
	}
	if err := checkNewJobID(id, "id", maxIDBytes); err != nil {
		return err
	}
	if limit := c.maxBodySize(); len(body) > limit {
		return invalidArg("body", "is %d bytes; the limit is %d", len(body), limit)
	}
	if o.DelayMs != 0 && o.RunAtMs != 0 {
		return invalidArg("DelayMs", "give DelayMs or RunAtMs, not both")
	}
	for _, f := range []struct {
		v         int64
		field     string
		low, high int64
	}{{o.DelayMs, "DelayMs", 0, maxDelayMs}, {o.RunAtMs, "RunAtMs", 0, maxEpochMs},
		{o.TTRMs, "TTRMs", 0, maxTTRMs}, {o.Priority, "Priority", -maxInt32 - 1, maxInt32},
		{o.MaxAttempts, "MaxAttempts", 0, maxInt32}, {o.IfVersion, "IfVersion", 0, maxVersion}} {
		if err := checkRange(f.v, f.field, f.low, f.high); err != nil {
			return err
		}
	}
	return nil
}

// maxTextChars is the longest free text (an abort's reason), in characters (runes), as the
// Python client's validate.MAX_ERROR_CHARS.
const maxTextChars = 65_536

// checkText checks a free text as the Python client's validate.text: at most 65536 characters,
// and valid UTF-8 (Go's counterpart of a lone surrogate: bytes with no character, which Redis
// would store and no reader decode), naming the character where it breaks.
func checkText(text, field string) error {
	if len(text) > maxTextChars && utf8.RuneCountInString(text) > maxTextChars {
		return invalidArg(field, "must be at most %d characters", maxTextChars)
	}
	if utf8.ValidString(text) {
		return nil
	}
	at := 0
	for i, r := range text {
		if _, size := utf8.DecodeRuneInString(text[i:]); r == utf8.RuneError && size == 1 {
			break
		}
		at++
	}
	return invalidArg(field, "must be valid UTF-8: an invalid byte at character %d", at)
}

// checkTopicArg refuses a topic the Python client refuses (ValidateTopic) as an
// *InvalidArgument naming it.
func checkTopicArg(topic string) error {
	if err := ValidateTopic(topic); err != nil {
		return &InvalidArgument{"topic", strings.TrimPrefix(err.Error(), "topic ")}
	}
	return nil
}

// checkReserved refuses a job no reservation could be acted on with (nil, no token, a bad id or
// topic) and a text (an error or reason) that checkText refuses, as the Python client does: nothing
// is sent.
func checkReserved(job *Job, text, textField string) error {
	if err := checkAckable(job, "job"); err != nil {
		return err
	}
	if err := checkTopicArg(job.Topic); err != nil {
		return err
	}
	return checkText(text, textField)
}

// checkAckable refuses a job no reservation could be acted on with (nil, no token, a bad id) as
// an *InvalidArgument naming field.
func checkAckable(job *Job, field string) error {
	switch {
	case job == nil:
		return invalidArg(field, "must be a job returned by Reserve or Lease")
	case job.Token == "":
		return invalidArg(field, "has no token: only reserved jobs can be acked, released or buried")
	}
	return checkStoredID(job.ID, field+".ID")
}

// checkLease checks Reserve's and Lease's count (1 to 1000) and ttrMs (0: each job's own ttr).
func checkLease(count, ttrMs int64) error {
	if err := checkRange(count, "count", 1, maxCount); err != nil {
		return err
	}
	return checkRange(ttrMs, "ttrMs", 0, maxTTRMs)
}

// Put creates a job (or replaces it with Replace); the status (created, exists, replaced,
// pending) and the version. A bad argument is an *InvalidArgument naming its field (the Python
// client's checks; zero options mean "the default"), and nothing is sent.
func (c *Client) Put(ctx context.Context, topic, id string, body []byte, o PutOptions) (string, int64, error) {
	if err := c.checkPut(topic, id, body, o); err != nil {
		return "", 0, err
	}
	replace := 0
	if o.Replace {
		replace = 1
	}
	if err := c.register(ctx, topic); err != nil {
		return "", 0, err
	}
	r, err := redis.Int64s(c.Call(ctx, "put", topic, Args{"now_ms": c.now(), "run_at_ms": opt(o.RunAtMs),
		"delay_ms": o.DelayMs, "ttr_ms": opt(o.TTRMs), "priority": o.Priority, "max_attempts": opt(o.MaxAttempts),
		"replace": replace, "if_version": opt(o.IfVersion), "id": []any{id}, "body": []any{body}}))
	if err != nil {
		return "", 0, err
	}
	switch r[0] {
	case 5:
		return "", 0, &VersionConflict{r[1]}
	case 6: // the topic is spread over partitions: nothing changed
		return "", 0, topicPartitioned(topic, r[1])
	}
	return [...]string{"", "created", "exists", "replaced", "pending"}[r[0]], r[1], nil
}

// Get reads a job by id; nil when there is none.
func (c *Client) Get(ctx context.Context, topic, id string) (*Job, error) {
	if err := checkTopicArg(topic); err != nil {
		return nil, err
	}
	if err := checkStoredID(id, "id"); err != nil {
		return nil, err
	}
	r, err := c.Call(ctx, "get", topic, Args{"now_ms": c.now(), "id": id})
	if err != nil || r == nil {
		return nil, err
	}
	if count, ok := r.(int64); ok { // no such job, and the topic is spread over partitions
		return nil, topicPartitioned(topic, count)
	}
	return c.parseJob(topic, r)
}

// Delete removes a job in any state (ifVersion 0: unconditionally); true if it existed (a
// schedule's pending occurrence: its next one is put, so that run alone is skipped).
func (c *Client) Delete(ctx context.Context, topic, id string, ifVersion int64) (bool, error) {
	if err := checkTopicArg(topic); err != nil {
		return false, err
	}
	if err := checkStoredID(id, "id"); err != nil {
		return false, err
	}
	if err := checkRange(ifVersion, "ifVersion", 0, maxVersion); err != nil {
		return false, err
	}
	return c.deleteCall(ctx, topic, id, ifVersion, "", "")
}

// Abort stops a job for good, as the Python client's abort: it is removed as Delete removes it
// (the holder of a running one is told on the wake channel and its ack is then stale; a
// schedule's pending occurrence: that run alone is skipped), but its history says so: an
// aborted event whose detail is reason ("" for none; for a running job, then "was running;
// cancel sent") and the outcome aborted (dead for a dead job). True if the job existed. A bad
// reason (see checkText), id or topic is an *InvalidArgument naming it, and nothing is sent.
func (c *Client) Abort(ctx context.Context, topic, id, reason string) (bool, error) {
	if err := checkText(reason, "reason"); err != nil {
		return false, err
	}
	if err := checkStoredID(id, "id"); err != nil {
		return false, err
	}
	return c.deleteCall(ctx, topic, id, 0, "abort", reason)
}

// deleteCall runs delete.lua: abort is "abort" for Abort, "" for Delete.
func (c *Client) deleteCall(ctx context.Context, topic, id string, ifVersion int64, abort, reason string) (bool, error) {
	if err := checkTopicArg(topic); err != nil {
		return false, err
	}
	args := Args{"id": id, "if_version": opt(ifVersion), "now_ms": c.now(), "abort": abort, "reason": reason}
	var r []int64
	var err error
	if strings.Contains(id, "@") { // a schedule's occurrence: its schedule may need more times
		var replies []any
		if replies, err = c.withRefill(ctx, topic, []Step{{Script: "delete", Args: args}}); err == nil {
			r, err = redis.Int64s(replies[0], nil)
		}
	} else {
		r, err = redis.Int64s(c.Call(ctx, "delete", topic, args))
	}
	if err == nil && r[0] == 5 {
		err = &VersionConflict{r[1]}
	}
	if err == nil && r[0] == 6 { // no such job, and the topic is spread over partitions
		err = topicPartitioned(topic, r[1])
	}
	return err == nil && r[0] == 1, err
}

// Reserve leases up to count ready jobs (ttrMs 0: each job's own ttr). The topic's timed-out
// reservations are requeued first, in the same round trip, at most once a second per topic
// (see sweepDue), as the Python client's reserve does.
func (c *Client) Reserve(ctx context.Context, topic string, count, ttrMs int64) ([]*Job, error) {
	if err := checkLease(count, ttrMs); err != nil {
		return nil, err
	}
	// times 0: the script skips the lease's times, which Reserve does not return
	reserve := Step{Script: "reserve", Args: Args{"now_ms": c.now(), "count": count,
		"ttr_ms": opt(ttrMs), "promote_limit": 1000, "times": 0}}
	steps := []Step{reserve}
	if c.sweepDue(topic) {
		steps = []Step{{Script: "requeue", Args: Args{"now_ms": "", "limit": 1000}}, reserve}
	}
	replies, err := c.Pipeline(ctx, topic, steps)
	if err != nil {
		return nil, err
	}
	r, err := redis.Values(replies[len(replies)-1], nil)
	if err != nil {
		return nil, err
	}
	if err := leasedNothing(topic, r); err != nil {
		return nil, err
	}
	var jobs []*Job
	for _, raw := range r[3:] {
		job, err := c.parseJob(topic, raw)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// Ack finishes a reserved job with no result; ErrStale if its token is no longer current.
func (c *Client) Ack(ctx context.Context, job *Job) error { return c.AckWith(ctx, job, nil) }

// AckWith finishes a reserved job keeping result in its history (see EncodeResult: an
// *InvalidArgument when it cannot be encoded, and nothing is sent); ErrStale if its token is no
// longer current.
func (c *Client) AckWith(ctx context.Context, job *Job, result any) error {
	if err := checkReserved(job, "", ""); err != nil {
		return err
	}
	data, err := EncodeResult(result)
	if err != nil {
		return err
	}
	replies, err := c.withRefill(ctx, job.Topic, []Step{{Script: "ack", Args: Args{"now_ms": c.now(),
		"id": []any{job.ID}, "token": []any{job.Token}, "result": []any{data}}}})
	if err != nil {
		return err
	}
	r, err := redis.Int64s(replies[0], nil)
	if err == nil && r[0] != 1 {
		err = ErrStale
	}
	return err
}

// Release puts a reserved job back after delayMs; the state it went to.
func (c *Client) Release(ctx context.Context, job *Job, delayMs int64, errorText string) (string, error) {
	return c.ReleaseJob(ctx, job, delayMs, errorText, false)
}

// Touch extends a reservation (ttrMs 0: the job's ttr); the new deadline.
func (c *Client) Touch(ctx context.Context, job *Job, ttrMs int64) (int64, error) {
	if err := checkReserved(job, "", ""); err != nil {
		return 0, err
	}
	if err := checkRange(ttrMs, "ttrMs", 0, maxTTRMs); err != nil {
		return 0, err
	}
	r, err := redis.Int64s(c.Call(ctx, "touch", job.Topic, Args{"now_ms": c.now(), "id": job.ID,
		"token": job.Token, "ttr_ms": opt(ttrMs)}))
	if err == nil && r[0] == 0 {
		err = ErrStale
	}
	if err != nil {
		return 0, err
	}
	return r[1], nil
}

// Bury moves a reserved job to dead with reason as its last error.
func (c *Client) Bury(ctx context.Context, job *Job, reason string) error {
	if err := checkReserved(job, reason, "reason"); err != nil {
		return err
	}
	replies, err := c.withRefill(ctx, job.Topic, []Step{{Script: "bury", Args: Args{"now_ms": c.now(),
		"id": job.ID, "token": job.Token, "reason": reason}}})
	if err != nil {
		return err
	}
	r, err := redis.Int64s(replies[0], nil)
	if err == nil && r[0] == 0 {
		err = ErrStale
	}
	return err
}

// doPlain sends one command whose first argument is a key.
func (c *Client) doPlain(ctx context.Context, command string, args ...any) (any, error) {
	var conn redis.Conn
	var err error
	if key, ok := args[0].(string); ok && c.Cluster != nil {
		conn, err = c.Cluster.Conn(ctx, key)
	} else {
		conn, err = c.Pool.GetContext(ctx)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Do(command, args...)
}

// Record appends value to the list at key (RPUSH): a convenience for handlers and tests.
func (c *Client) Record(ctx context.Context, key, value string) error {
	_, err := c.doPlain(ctx, "RPUSH", key, value)
	return err
}
