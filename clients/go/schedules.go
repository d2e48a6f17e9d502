package redisched

// Recurring schedules: validation, cron times and the replies of get_schedule.lua, as in the
// Python client (src/redisched/schedule_ops.py and recurrence.py).
//
// An interval schedule (EveryMs) runs on its own: reserve.lua and pull.lua put the next
// occurrence. A cron schedule holds up to 48 upcoming UTC times computed here (cron.go, in
// the schedule's IANA time zone from the platform's tz database); when fewer than 16 are left
// the scripts add it to the topic's refill set, and Refill appends more (refill.lua).

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
)

const (
	upcoming           = 48
	refillBatch        = 10
	maxScheduleIDBytes = maxIDBytes - len("@2000-01-01T00:00:00Z")
	maxEveryMs         = 100 * 365 * 86_400_000
	maxTTRMs           = 365 * 86_400_000
	maxEpochMs         = 253_402_300_799_000
	lookaheadMs        = 50 * 365 * 86_400_000
	maxInt32           = 1<<31 - 1
	// maxVersion is the highest version (the largest integer a Lua number holds exactly):
	// versions go on from version_floor, which with history off grows by about one per job
	// a topic ends.
	maxVersion = 1<<53 - 1
	// DefaultMaxBodySize is the largest job or schedule body accepted unless Client.MaxBodySize says otherwise.
	DefaultMaxBodySize = 1 << 20
)

// InvalidArgument is a bad argument: nothing was sent. Field names it.
type InvalidArgument struct{ Field, Message string }

func (e *InvalidArgument) Error() string { return e.Field + ": " + e.Message }

func invalidArg(field, format string, a ...any) error {
	return &InvalidArgument{field, fmt.Sprintf(format, a...)}
}

// ScheduleOptions of Schedule. Exactly one of Cron and EveryMs; zero values mean: UTC, no
// start or end, the topic's ttr and max_attempts, priority 0, no version check.
type ScheduleOptions struct {
	Cron               string // a 5-field crontab expression, read in TZ
	EveryMs            int64  // an interval of whole seconds, in ms
	TZ                 string // an IANA time zone name ("" = UTC)
	StartAtMs, EndAtMs int64
	TTRMs, Priority    int64
	MaxAttempts        int64
	IfVersion          int64
}

// Schedule is a recurring schedule as get_schedule.lua reads it; times are epoch ms, 0: none.
type Schedule struct {
	Topic       string `json:"topic"`
	ID          string `json:"id"`
	Version     int64  `json:"version"`
	Cron        string `json:"cron"` // "" for an interval schedule
	EveryMs     int64  `json:"every_ms"`
	TZ          string `json:"tz"`
	NextRunAtMs int64  `json:"next_run_at_ms"`
	StartAtMs   int64  `json:"start_at_ms"`
	EndAtMs     int64  `json:"end_at_ms"`
	LastRunAtMs int64  `json:"last_run_at_ms"`
	Priority    int64  `json:"priority"`
	TTRMs       int64  `json:"ttr_ms"`
	MaxAttempts int64  `json:"max_attempts"` // 0: unlimited (schedules made before the default of 25)
	Body        []byte `json:"body"`
}

func checkJobID(id, field string, maxBytes int) error {
	switch {
	case id == "":
		return invalidArg(field, "must not be empty")
	case !utf8.ValidString(id):
		return invalidArg(field, "must be valid UTF-8")
	case len(id) > maxBytes:
		return invalidArg(field, "must be at most %d bytes in UTF-8", maxBytes)
	}
	return nil
}

// checkStoredID checks the id of a job or schedule that exists. A raw script call may have
// stored it as bytes that are not UTF-8: a Go string holds them as they are, and the call sends
// them back, so such an id is taken (as the Python client's validate.stored_id takes the text it
// read such an id as); a new job's or schedule's id must be UTF-8 (checkNewJobID).
func checkStoredID(id, field string) error {
	if utf8.ValidString(id) {
		return checkJobID(id, field, maxIDBytes)
	}
	if len(id) > maxIDBytes {
		return invalidArg(field, "must be at most %d bytes", maxIDBytes)
	}
	return nil
}

// shown is an id as text to read (a webhook's payload, a log): each byte that is not part of a
// UTF-8 character written \xNN, as the Python client's convert.shown writes it (encoding/json
// would write U+FFFD, another id's text).
func shown(id string) string {
	if utf8.ValidString(id) {
		return id
	}
	var out strings.Builder
	for i := 0; i < len(id); {
		r, size := utf8.DecodeRuneInString(id[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&out, "\\x%02x", id[i])
		} else {
			out.WriteString(id[i : i+size])
		}
		i += size
	}
	return out.String()
}

// endAtPast is why schedule.lua refused a schedule (status 6), as every glue words it.
const endAtPast = "must be in the future and after the schedule's first run (by the Redis server's clock): the schedule would never run"

// dotNameProblem is why "." and ".." are no new id or topic: a URL path carrying one bare is
// resolved to its parent by browsers and curl (validate.new_name in the Python client).
const dotNameProblem = "must not be '.' or '..' (a URL path would resolve it to its parent)"

// checkNewName refuses "." and ".." as the id or topic of something to create. Reading and
// deleting an existing one stay possible: data stored by an older version must stay removable.
func checkNewName(name, field string) error {
	if name == "." || name == ".." {
		return &InvalidArgument{field, dotNameProblem}
	}
	return nil
}

// checkNewJobID checks the id of a job or schedule to create: checkJobID, and not "." or "..".
func checkNewJobID(id, field string, maxBytes int) error {
	if err := checkJobID(id, field, maxBytes); err != nil {
		return err
	}
	return checkNewName(id, field)
}

// register lists topic in the topics set, as every call that creates something in it does; a
// bad topic, or one named "." or "..", is an *InvalidArgument and is not listed.
func (c *Client) register(ctx context.Context, topic string) error {
	if err := checkTopicArg(topic); err != nil {
		return err
	}
	if err := checkNewName(topic, "topic"); err != nil {
		return err
	}
	_, err := c.doPlain(ctx, "SADD", c.Prefix+":topics", topic)
	return err
}

func checkRange(v int64, field string, low, high int64) error {
	if v < low || v > high {
		return invalidArg(field, "must be between %d and %d", low, high)
	}
	return nil
}

// notZones are files of the tz database that are no zone every glue knows (the host's own,
// the POSIX default rules, the placeholder; the posix/ and right/ trees too): Node's Intl
// refuses them, and its refill of such a schedule's cron times would find none.
var notZones = map[string]bool{"localtime": true, "posixrules": true, "Factory": true}

// TimeZone loads an IANA time zone name (Europe/Berlin, UTC) from the platform's tz database,
// for a new schedule: a zone every glue knows (none of notZones).
func TimeZone(name string) (*time.Location, error) {
	if notZones[name] || strings.HasPrefix(name, "posix/") || strings.HasPrefix(name, "right/") {
		return nil, invalidArg("tz", "unknown time zone %q", name)
	}
	return storedZone(name)
}

// storedZone loads a schedule's stored time zone name: as TimeZone, but a name refused for new
// schedules since (localtime...) still loads, so an older schedule goes on getting its times.
func storedZone(name string) (*time.Location, error) {
	unknown := invalidArg("tz", "unknown time zone %q", name)
	if name == "" || name == "Local" || len(name) > 64 || strings.Contains(name, "..") {
		return nil, unknown
	}
	// LoadLocation cleans the path (Europe//Berlin, ./UTC); Python's zoneinfo refuses it
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." {
			return nil, unknown
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, unknown
	}
	return loc, nil
}

// MaxCronLength is the most characters of a cron expression (recurrence.MAX_CRON_LENGTH): every
// value of all five fields listed one by one takes ~400.
const MaxCronLength = 1024

// CronExpression checks a 5-field crontab expression of at most MaxCronLength characters that
// fires, in the Python client's dialect (cron.go); it comes back with its whitespace normalised
// (as Python's split() does).
func CronExpression(expr string, loc *time.Location) (string, error) {
	// characters, as Python's len counts them, before any parsing
	if utf8.RuneCountInString(expr) > MaxCronLength {
		return "", invalidArg("cron", "must be at most %d characters", MaxCronLength)
	}
	fields := cronWords(expr)
	if len(fields) != 5 {
		return "", invalidArg("cron", "must have 5 fields: minute hour day month weekday")
	}
	normal := strings.Join(fields, " ")
	spec, err := parseCron(normal)
	if err != nil {
		return "", invalidArg("cron", "invalid cron expression %q: %v", expr, err)
	}
	if !cronFires(spec, loc) {
		return "", invalidArg("cron", "cron expression %q never fires", expr)
	}
	return normal, nil
}

func ceilSecond(ms int64) int64 { return (ms + 999) / 1000 * 1000 }

// scheduleArgs checks a schedule's options as the Python client does and builds schedule.lua's
// arguments (all but now_ms); wallMs is the clock the first cron times start from.
func (c *Client) scheduleArgs(id string, body []byte, o ScheduleOptions, wallMs int64) (Args, error) {
	if err := checkNewJobID(id, "id", maxScheduleIDBytes); err != nil {
		return nil, err
	}
	if limit := c.maxBodySize(); len(body) > limit {
		return nil, invalidArg("body", "is %d bytes; the limit is %d", len(body), limit)
	}
	if (o.Cron == "") == (o.EveryMs == 0) {
		return nil, invalidArg("cron", "give exactly one of Cron and EveryMs")
	}
	tz := o.TZ
	if tz == "" {
		tz = "UTC"
	}
	loc, err := TimeZone(tz)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		v     int64
		field string
		low   int64
		high  int64
	}{{o.StartAtMs, "StartAtMs", 0, maxEpochMs}, {o.EndAtMs, "EndAtMs", 0, maxEpochMs},
		{o.TTRMs, "TTRMs", 0, maxTTRMs}, {o.Priority, "Priority", -maxInt32 - 1, maxInt32},
		{o.MaxAttempts, "MaxAttempts", 0, maxInt32}, {o.IfVersion, "IfVersion", 0, maxVersion}} {
		if err := checkRange(f.v, f.field, f.low, f.high); err != nil {
			return nil, err
		}
	}
	if o.EndAtMs != 0 && o.EndAtMs <= o.StartAtMs {
		return nil, invalidArg("EndAtMs", "must be after StartAtMs")
	}
	args := Args{"id": id, "if_version": opt(o.IfVersion), "every_ms": int64(0), "anchor_ms": "",
		"start_ms": o.StartAtMs, "end_ms": o.EndAtMs, "ttr_ms": opt(o.TTRMs), "priority": o.Priority,
		"max_attempts": opt(o.MaxAttempts), "cron": "", "tz": loc.String(), "body": body, "time": []any{}}
	if o.EveryMs != 0 {
		switch {
		case o.EveryMs < 1000:
			return nil, invalidArg("EveryMs", "must be at least 1 second")
		case o.EveryMs%1000 != 0:
			return nil, invalidArg("EveryMs", "must be a whole number of seconds")
		case o.EveryMs > maxEveryMs:
			return nil, invalidArg("EveryMs", "must be at most %d seconds", maxEveryMs/1000)
		}
		args["every_ms"] = o.EveryMs
		if o.StartAtMs != 0 {
			args["anchor_ms"] = ceilSecond(o.StartAtMs)
		}
		return args, nil
	}
	expr, err := CronExpression(o.Cron, loc)
	if err != nil {
		return nil, err
	}
	after := o.StartAtMs - 1
	if wallMs-60_000 > after {
		after = wallMs - 60_000
	}
	times := CronTimes(expr, loc, after, upcoming, o.EndAtMs)
	if len(times) == 0 && o.EndAtMs == 0 {
		return nil, invalidArg("cron", "cron expression %q never fires", expr)
	}
	args["cron"], args["time"] = expr, column(times)
	return args, nil
}

// timesAfter are the cron times to send again when schedule.lua answered that all it was sent
// come before the schedule's first run may (status 7: its last run is further ahead than they
// reach): up to 48 after afterMs, the time it named, within the schedule's end.
func timesAfter(args Args, afterMs int64) ([]any, error) {
	loc, err := TimeZone(args["tz"].(string))
	if err != nil {
		return nil, err
	}
	return column(CronTimes(args["cron"].(string), loc, afterMs, upcoming, args["end_ms"].(int64))), nil
}

// column is times as a script's variadic argument.
func column(times []int64) []any {
	out := make([]any, len(times))
	for i, t := range times {
		out[i] = t
	}
	return out
}

// Schedule creates or replaces (by id) a recurring schedule and returns it as GetSchedule reads
// it; a *VersionConflict when IfVersion does not match (nothing changed), an *InvalidArgument
// for a bad option (nothing sent).
func (c *Client) Schedule(ctx context.Context, topic, id string, body []byte, o ScheduleOptions) (*Schedule, error) {
	wall := time.Now().UnixMilli()
	if c.Clock != nil {
		wall = c.Clock()
	}
	args, err := c.scheduleArgs(id, body, o, wall)
	if err != nil {
		return nil, err
	}
	if err := c.register(ctx, topic); err != nil {
		return nil, err
	}
	for {
		args["now_ms"] = c.now()
		replies, err := c.Pipeline(ctx, topic, []Step{{Script: "schedule", Args: args},
			{Script: "get_schedule", Args: Args{"id": []any{id}}}})
		if err != nil {
			return nil, err
		}
		r, err := redis.Int64s(replies[0], nil)
		if err != nil {
			return nil, err
		}
		switch r[0] {
		case 5:
			return nil, &VersionConflict{r[1]}
		case 6: // end_ms is not after now: nothing changed
			return nil, &InvalidArgument{"EndAtMs", endAtPast}
		case 7: // the times come before its last run: nothing changed, send later ones
			if args["time"], err = timesAfter(args, r[2]); err != nil {
				return nil, err
			}
			continue
		case 8: // the topic is spread over partitions: nothing changed
			return nil, topicPartitioned(topic, r[1])
		}
		entries, err := redis.Values(replies[1], nil)
		if err != nil {
			return nil, err
		}
		return parseSchedule(topic, entries[0])
	}
}

// GetSchedule reads a schedule by id; nil when there is none. A partitioned topic's own name
// answers a TopicPartitioned error instead of nil: a schedule made over HTTP or the CLI lives
// in its id's partition.
func (c *Client) GetSchedule(ctx context.Context, topic, id string) (*Schedule, error) {
	if err := checkStoredID(id, "id"); err != nil {
		return nil, err
	}
	entries, err := redis.Values(c.Call(ctx, "get_schedule", topic, Args{"id": []any{id}}))
	if err != nil || entries[0] == nil {
		return nil, err
	}
	if count, ok := entries[0].(int64); ok {
		return nil, topicPartitioned(topic, count)
	}
	return parseSchedule(topic, entries[0])
}

// Schedules are every schedule of the topic, sorted by id. A partitioned topic's own name
// answers a TopicPartitioned error: its schedules are spread over its partitions and itself.
func (c *Client) Schedules(ctx context.Context, topic string) ([]*Schedule, error) {
	if err := checkTopic(topic); err != nil {
		return nil, fmt.Errorf("redisched: %w", err)
	}
	ids, err := redis.Strings(c.doPlain(ctx, "HKEYS", c.Key(topic, "schedules")))
	if err != nil {
		return nil, err
	}
	if count, err := redis.Int64(c.doPlain(ctx, "HGET", c.Key(topic, "meta"), "partitions")); err == nil {
		return nil, topicPartitioned(topic, count)
	} else if err != redis.ErrNil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sort.Strings(ids)
	column := make([]any, len(ids))
	for i, id := range ids {
		column[i] = id
	}
	entries, err := redis.Values(c.Call(ctx, "get_schedule", topic, Args{"id": column}))
	if err != nil {
		return nil, err
	}
	var out []*Schedule
	for _, entry := range entries {
		if _, listed := entry.([]any); !listed { // unscheduled meanwhile: nil, or the count
			continue
		}
		s, err := parseSchedule(topic, entry)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Unschedule deletes a schedule and its pending occurrence (a running one is left alone);
// ifVersion 0: unconditionally. True if it existed. A partitioned topic's own name that holds
// no such schedule answers a TopicPartitioned error (the schedule may be in its id's partition).
func (c *Client) Unschedule(ctx context.Context, topic, id string, ifVersion int64) (bool, error) {
	if err := checkStoredID(id, "id"); err != nil {
		return false, err
	}
	if err := checkRange(ifVersion, "IfVersion", 0, maxVersion); err != nil {
		return false, err
	}
	r, err := redis.Int64s(c.Call(ctx, "unschedule", topic, Args{"id": id, "if_version": opt(ifVersion),
		"now_ms": c.now()}))
	if err != nil {
		return false, err
	}
	if r[0] == 5 {
		return false, &VersionConflict{r[1]}
	}
	if r[0] == 6 { // no such schedule, and the topic is spread over partitions
		return false, topicPartitioned(topic, r[1])
	}
	return r[0] == 1, nil
}

func parseSchedule(topic string, entry any) (*Schedule, error) {
	r, err := redis.Values(entry, nil)
	if err != nil {
		return nil, err
	}
	if len(r) < 15 {
		return nil, fmt.Errorf("redisched: a schedule entry of %d fields", len(r))
	}
	n := func(i int) int64 { v, _ := redis.Int64(r[i], nil); return v }
	s := func(i int) string { v, _ := redis.String(r[i], nil); return v }
	body, _ := redis.Bytes(r[12], nil)
	return &Schedule{Topic: topic, ID: s(0), Version: n(1), Cron: s(2), TZ: s(3), EveryMs: n(4),
		StartAtMs: n(5), EndAtMs: n(6), NextRunAtMs: n(7), LastRunAtMs: n(8), Priority: n(9),
		TTRMs: n(10), MaxAttempts: n(11), Body: body}, nil
}

// refillTimes are the times refill.lua appends for one get_schedule.lua entry.
func refillTimes(entry any, nowMs int64) []any {
	r, err := redis.Values(entry, nil)
	if err != nil || len(r) < 15 {
		return []any{}
	}
	n := func(i int) int64 { v, _ := redis.Int64(r[i], nil); return v }
	expr, _ := redis.String(r[2], nil)
	tz, _ := redis.String(r[3], nil)
	if expr == "" {
		return []any{}
	}
	loc, err := storedZone(tz)
	if err != nil {
		return []any{}
	}
	next, last, left, lastTime := n(7), n(8), n(13), n(14)
	after := nowMs - 1
	if next != 0 {
		after = next
		if lastTime > after {
			after = lastTime
		}
	} else if last > after {
		after = last
	}
	times := CronTimes(expr, loc, after, upcoming-int(left), n(6))
	out := make([]any, len(times))
	for i, t := range times {
		out[i] = t
	}
	return out
}

// Refill tops up the cron times of the schedules ids (refill.lua). Ack, AckMany, AckAndLease,
// ReleaseJob, Bury, Requeue and Delete of an occurrence do it on their own when the scripts ask
// for it.
func (c *Client) Refill(ctx context.Context, topic string, ids []string) error {
	column := make([]any, len(ids))
	for i, id := range ids {
		column[i] = id
	}
	entries, err := redis.Values(c.Call(ctx, "get_schedule", topic, Args{"id": column}))
	if err != nil {
		return err
	}
	var nowMs int64
	if c.Clock != nil {
		nowMs = c.Clock()
	} else {
		conn, err := c.conn(ctx, topic)
		if err != nil {
			return err
		}
		t, err := redis.Int64s(conn.Do("TIME"))
		conn.Close()
		if err != nil {
			return err
		}
		nowMs = t[0]*1000 + t[1]/1000
	}
	steps := make([]Step, len(ids))
	for i, id := range ids {
		var version int64
		if r, err := redis.Values(entries[i], nil); err == nil && len(r) > 1 {
			version, _ = redis.Int64(r[1], nil)
		}
		steps[i] = Step{Script: "refill", Args: Args{"now_ms": c.now(), "id": id, "version": version,
			"time": refillTimes(entries[i], nowMs)}}
	}
	_, err = c.Pipeline(ctx, topic, steps)
	return err
}

// withRefill runs steps plus a read of the topic's refill set in one round trip and returns the
// steps' replies; the schedules found there get more cron times after (best effort: a failed
// refill leaves them in the set for the next call).
func (c *Client) withRefill(ctx context.Context, topic string, steps []Step) ([]any, error) {
	read := Step{Command: []any{"ZRANGE", c.Key(topic, "refill"), 0, refillBatch - 1}}
	replies, err := c.Pipeline(ctx, topic, append(steps, read))
	if err != nil {
		return nil, err
	}
	if ids, _ := redis.Strings(replies[len(replies)-1], nil); len(ids) > 0 {
		_ = c.Refill(ctx, topic, ids)
	}
	return replies[:len(replies)-1], nil
}
