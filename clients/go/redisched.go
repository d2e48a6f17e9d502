// Package redisched runs the Lua scripts of redisched (src/redisched/lua) from Go, through redigo.
//
// The scripts are read from disk at run time, never copied: see ScriptsDir. Each script's
// header is its contract: "KEYS[i] name type" lines give the keys (<prefix>:{<topic>}:<name>)
// and "ARGV[i] name type" lines the order of the arguments. Times are epoch milliseconds.
package redisched

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
)

var paramLine = regexp.MustCompile(`^-- (KEYS|ARGV)\[(\d+)\] (\w+) (\S+)$`)

// ErrStale: the token no longer holds the job (requeued, re-reserved, deleted or acked).
var ErrStale = errors.New("redisched: stale reservation")

// VersionConflict: if_version did not match the job's current version (0: no such job).
type VersionConflict struct{ Current int64 }

func (e *VersionConflict) Error() string {
	return fmt.Sprintf("redisched: version conflict, current version %d", e.Current)
}

// topicPartitioned is the InvalidArgument of a put, schedule or delete by id that named a
// partitioned topic itself (put.lua status 6, schedule.lua 8, delete.lua 6): its jobs and
// schedules live in their ids' partitions (Python's partition_setting), and Redis changed nothing.
// A read of the topic itself that found nothing says so too (get.lua answers the count in place
// of nil, reserve.lua after its three times when it leased nothing), and so does a Worker's Run.
func topicPartitioned(topic string, count int64) error {
	return &InvalidArgument{"topic", fmt.Sprintf("topic %q is spread over %d partitions: each "+
		"job lives in its id's partition (crc32 of the id mod the count)", topic, count)}
}

// Param is one ARGV entry of a script header; Repeats marks the repeated group ("type...").
type Param struct {
	Name, Type string
	Repeats    bool
}

// Script is one .lua file with its parsed header.
type Script struct {
	Name, Source string
	Header       string // the header's text, comment marks removed, lines joined
	Keys         []string
	Argv         []Param
	lua          *redis.Script
}

// ScriptsDir is $REDISCHED_LUA_DIR, else src/redisched/lua of the repository this package
// was compiled from (found from this source file's path).
func ScriptsDir() (string, error) {
	if dir := os.Getenv("REDISCHED_LUA_DIR"); dir != "" {
		return dir, nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "..", "..", "src", "redisched", "lua")
		if _, err := os.Stat(dir); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("redisched: set REDISCHED_LUA_DIR (see `redisched scripts path`)")
}

// ParseScript reads the KEYS and ARGV lines of a script's header.
func ParseScript(name, source string) (*Script, error) {
	s := &Script{Name: name, Source: source}
	for _, line := range strings.Split(source, "\n") {
		if !strings.HasPrefix(line, "--") {
			break
		}
		s.Header += strings.TrimSpace(strings.TrimPrefix(line, "--")) + " "
		m := paramLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		index, _ := strconv.Atoi(m[2])
		if (m[1] == "KEYS" && index != len(s.Keys)+1) || (m[1] == "ARGV" && index != len(s.Argv)+1) {
			return nil, fmt.Errorf("%s.lua: %s out of order", name, m[1])
		}
		if m[1] == "KEYS" {
			s.Keys = append(s.Keys, m[3])
		} else {
			s.Argv = append(s.Argv, Param{m[3], strings.TrimSuffix(m[4], "..."), strings.HasSuffix(m[4], "...")})
		}
	}
	s.lua = redis.NewScript(len(s.Keys), source)
	return s, nil
}

// LoadScripts reads every .lua file of dir ("" = ScriptsDir()).
func LoadScripts(dir string) (map[string]*Script, error) {
	if dir == "" {
		var err error
		if dir, err = ScriptsDir(); err != nil {
			return nil, err
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.lua"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("redisched: no .lua scripts in %s", dir)
	}
	sort.Strings(files)
	scripts := map[string]*Script{}
	for _, file := range files {
		source, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(file), ".lua")
		if scripts[name], err = ParseScript(name, string(source)); err != nil {
			return nil, err
		}
	}
	return scripts, nil
}

// Args are a call's arguments by header name: string, []byte or integer values, "" for empty;
// the repeated group ("type...") takes one []any per name, all of one length.
type Args map[string]any

// BuildArgs orders named arguments as the header's ARGV lines say, interleaving the group.
func BuildArgs(s *Script, named Args) ([]any, error) {
	var args []any
	var group []Param
	seen := 0
	for _, p := range s.Argv {
		v, ok := named[p.Name]
		if !ok {
			return nil, fmt.Errorf("%s: missing argument %s", s.Name, p.Name)
		}
		seen++
		if p.Repeats {
			group = append(group, p)
		} else {
			args = append(args, v)
		}
	}
	if seen != len(named) {
		return nil, fmt.Errorf("%s: unknown arguments in %v", s.Name, named)
	}
	if len(group) > 0 {
		first, _ := named[group[0].Name].([]any)
		for i := range first {
			for _, p := range group {
				column, ok := named[p.Name].([]any)
				if !ok || len(column) != len(first) {
					return nil, fmt.Errorf("%s: repeated arguments must be lists of one length", s.Name)
				}
				args = append(args, column[i])
			}
		}
	}
	return args, nil
}

var jobArray = regexp.MustCompile(`the job array \[([^\]]+)\]`)

// JobFields are the names of the job array's entries, as get.lua's header lists them.
func JobFields(scripts map[string]*Script) ([]string, error) {
	var m []string
	if get, ok := scripts["get"]; ok {
		m = jobArray.FindStringSubmatch(get.Header)
	}
	if m == nil {
		return nil, errors.New("redisched: get.lua's header must list 'the job array [id, ...]'")
	}
	fields := strings.Split(m[1], ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	return fields, nil
}

// Client runs the scripts on a redigo pool.
type Client struct {
	Pool    *redis.Pool
	Prefix  string             // key prefix, "redisched" by default
	Scripts map[string]*Script // by name
	Clock   func() int64       // nil: Redis server time; else epoch ms (tests)
	Cluster *Cluster           // set by NewCluster: calls go to the node of the topic's slot
	// MaxBodySize is the largest job or schedule body accepted, in bytes (0: DefaultMaxBodySize).
	MaxBodySize int
	jobFields   []string
	sweeps      sweeps // when each topic's Reserve last requeued first (see sweepDue)
}

// New loads the scripts of dir ("" = ScriptsDir()) for use on pool.
func New(pool *redis.Pool, dir string) (*Client, error) {
	scripts, err := LoadScripts(dir)
	if err != nil {
		return nil, err
	}
	fields, err := JobFields(scripts)
	if err != nil {
		return nil, err
	}
	return &Client{Pool: pool, Prefix: "redisched", Scripts: scripts, jobFields: fields}, nil
}

// NewPool is a small redigo pool for a redis:// URL. A connection idle for a while is PINGed
// before use and replaced if dead (pingIfIdle).
func NewPool(url string) *redis.Pool {
	return &redis.Pool{MaxIdle: 4, Dial: func() (redis.Conn, error) { return DialURL(url) }, TestOnBorrow: pingIfIdle}
}

// idleCheckAfter is how long a pooled connection may rest before it is PINGed on borrowing.
const idleCheckAfter = time.Second

// pingIfIdle is a redis.Pool's TestOnBorrow, redigo's documented pattern: a connection resting
// since before a Redis restart is closed at the other end, and without this check its first
// command (a request, a health check) would fail with EOF although Redis is up again.
func pingIfIdle(c redis.Conn, returned time.Time) error {
	if time.Since(returned) < idleCheckAfter {
		return nil
	}
	_, err := c.Do("PING")
	return err
}

// DialURL connects to a Redis URL: redis:// and rediss:// as redigo reads them, and
// unix:///path/to/redis.sock?db=N (a password as unix://:password@/path), the form
// `redisched serve` prints for its embedded Redis.
func DialURL(rawURL string) (redis.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "unix" {
		return redis.DialURL(rawURL)
	}
	if u.Path == "" {
		return nil, fmt.Errorf("invalid redis URL %q: no socket path", rawURL)
	}
	options := []redis.DialOption{}
	if db := u.Query().Get("db"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("invalid redis URL %q: db must be a number", rawURL)
		}
		options = append(options, redis.DialDatabase(n))
	}
	if u.User != nil {
		if password, set := u.User.Password(); set {
			options = append(options, redis.DialPassword(password))
		}
		if name := u.User.Username(); name != "" {
			options = append(options, redis.DialUsername(name))
		}
	}
	return redis.Dial("unix", u.Path, options...)
}

// ValidateTopic refuses the topic names the Python glue refuses (keys.topic_problem):
// 1 to 200 characters of valid UTF-8, no braces, no control characters (C0 and DEL).
func ValidateTopic(topic string) error {
	n := utf8.RuneCountInString(topic)
	switch {
	case !utf8.ValidString(topic):
		return errors.New("topic must be valid UTF-8")
	case n < 1 || n > 200:
		return errors.New("topic must be 1 to 200 characters long")
	case strings.ContainsAny(topic, "{}"):
		return errors.New("topic must not contain '{' or '}'")
	case strings.IndexFunc(topic, func(r rune) bool { return r < 32 || r == 127 }) >= 0:
		return errors.New("topic must not contain control characters")
	}
	return nil
}

// Key is the full name of one of a topic's keys.
func (c *Client) Key(topic, name string) string { return c.Prefix + ":{" + topic + "}:" + name }

// Call runs one script by name and returns its raw reply (redigo types).
func (c *Client) Call(ctx context.Context, name, topic string, named Args) (any, error) {
	s, keysAndArgs, err := c.prepare(name, topic, named)
	if err != nil {
		return nil, err
	}
	conn, err := c.conn(ctx, topic)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return s.lua.Do(conn, keysAndArgs...)
}

// prepare checks a call and builds its keys and arguments.
func (c *Client) prepare(name, topic string, named Args) (*Script, []any, error) {
	s, ok := c.Scripts[name]
	if !ok {
		return nil, nil, fmt.Errorf("redisched: no script %q", name)
	}
	if err := checkTopic(topic); err != nil {
		return nil, nil, fmt.Errorf("redisched: %w", err)
	}
	args, err := BuildArgs(s, named)
	if err != nil {
		return nil, nil, err
	}
	keysAndArgs := make([]any, 0, len(s.Keys)+len(args))
	for _, k := range s.Keys {
		keysAndArgs = append(keysAndArgs, c.Key(topic, k))
	}
	return s, append(keysAndArgs, args...), nil
}

// conn is a connection for the topic's keys: from the pool, or from the cluster node that
// holds the topic's slot.
func (c *Client) conn(ctx context.Context, topic string) (redis.Conn, error) {
	if c.Cluster != nil {
		return c.Cluster.Conn(ctx, c.Key(topic, "jobs"))
	}
	return c.Pool.GetContext(ctx)
}

// subscriberConn is a connection of its own for Pub/Sub, outside the pool so that another
// goroutine may close it to end a blocked Receive (on a cluster, any node: PUBLISH reaches all).
func (c *Client) subscriberConn(ctx context.Context) (redis.Conn, error) {
	if c.Cluster != nil {
		return c.Cluster.dial()
	}
	if c.Pool.DialContext != nil {
		return c.Pool.DialContext(ctx)
	}
	return c.Pool.Dial()
}
