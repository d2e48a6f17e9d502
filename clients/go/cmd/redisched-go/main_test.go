package main

// The command line, run as a user runs it: the binary built once, against
// REDISCHED_TEST_REDIS_URL (so a command that wrongly starts talks to a server the test owns).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is redisched-go, built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "redisched-go-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "redisched-go")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	code := 1
	if err := build.Run(); err == nil {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs redisched-go with args for at most 10 s (a server that wrongly started is killed,
// exit -1), with the test's redis-server as $REDISCHED_REDIS_URL.
func runBinary(t *testing.T, args ...string) result {
	t.Helper()
	url := os.Getenv("REDISCHED_TEST_REDIS_URL")
	if url == "" {
		t.Fatal("set REDISCHED_TEST_REDIS_URL to a redis-server you own")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), "REDISCHED_REDIS_URL="+url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// TestHelpPrintsUsage: every command's -help (and --help, -h) prints its usage on stdout and
// exits 0 (before, serve -help printed the flags and "error: flag: help requested", exit 1, and
// get --help was a usage error).
func TestHelpPrintsUsage(t *testing.T) {
	for _, args := range [][]string{{"-help"}, {"--help"}, {"-h"}, {"serve", "-help"}, {"serve", "--help"},
		{"serve", "-addr=127.0.0.1:0", "-h"}, {"put", "--help"}, {"get", "-help"}, {"reserve", "-h"},
		{"ack", "--help"}} {
		got := runBinary(t, args...)
		name := ""
		if args[0] != "-help" && args[0] != "--help" && args[0] != "-h" {
			name = args[0] + " "
		}
		if got.code != 0 || !strings.Contains(got.stdout, "usage: redisched-go "+name) || got.stderr != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, got.code, got.stdout, got.stderr)
		}
	}
}

// TestBadCommandLineIsAUsageError: an unknown option, a stray argument or a wrong number of
// arguments exits 2 naming it, and nothing starts (before, serve's unknown option exited 1 and
// an option after a stray argument was ignored: the server started).
func TestBadCommandLineIsAUsageError(t *testing.T) {
	for _, c := range []struct {
		args  []string
		named string
	}{
		{[]string{"serve", "-addr=127.0.0.1:0", "-prot", "7301"}, "no such option: -prot"},
		{[]string{"serve", "-addr=127.0.0.1:0", "--prot=7301"}, "no such option: -prot"},
		{[]string{"serve", "-addr=127.0.0.1:0", "7301", "-prot"}, "unexpected argument: 7301"},
		{[]string{"get", "some-topic", "some-id", "-v"}, "no such option: -v"},
		{[]string{"get", "some-topic"}, "takes 2 arguments, not 1"},
		{[]string{"put", "some-topic", "id", "body", "soon"}, "DELAY_MS"},
		{[]string{"serve", "-addr=127.0.0.1:0", "-timeout=0s"}, "-timeout: must be more than 0s and at most 5m0s"},
		{[]string{"serve", "-addr=127.0.0.1:0", "-timeout=301s"}, "-timeout: must be more than 0s and at most 5m0s"},
		{[]string{"serve", "-addr=127.0.0.1:0", "-timeout", "-1s"}, "-timeout: must be more than 0s and at most 5m0s"},
		{[]string{"sevre"}, "no such command: sevre"},
		{[]string{}, "a command is needed"},
	} {
		got := runBinary(t, c.args...)
		if got.code != 2 || !strings.Contains(got.stderr, c.named) || !strings.Contains(got.stderr, "usage:") ||
			got.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", c.args, got.code, got.stdout, got.stderr)
		}
	}
}

// TestServeRefusesWeakSecrets: -secret must give a key of at least 16 bytes, with the Python
// service's words (before, a 5-byte key was accepted and the server started).
func TestServeRefusesWeakSecrets(t *testing.T) {
	message := "-secret: must give a key of at least 16 bytes (whsec_ and the base64 of 16 bytes or more, " +
		"or 16+ UTF-8 bytes)"
	for _, args := range [][]string{
		{"serve", "-addr=127.0.0.1:0", "-push", "t=http://127.0.0.1:9/hook", "-secret", "shortkey"},
		{"serve", "-addr=127.0.0.1:0", "-secret", "shortkey"},
	} {
		got := runBinary(t, args...)
		if got.code != 2 || !strings.Contains(got.stderr, message) || got.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, got.code, got.stdout, got.stderr)
		}
	}
}

// TestServeRefusesAnAddrWithoutHostOrPort: -addr must be HOST:PORT with a host and a port from 0
// to 65535 (before, -addr= and -addr=:0 listened on every interface, unauthenticated, and
// -addr=garbage exited 1 with net.Listen's error).
func TestServeRefusesAnAddrWithoutHostOrPort(t *testing.T) {
	for _, addr := range []string{"", ":0", ":7301", "garbage", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:http", "[::1]"} {
		got := runBinary(t, "serve", "-addr="+addr)
		named := fmt.Sprintf("-addr %q: must be HOST:PORT", addr)
		if got.code != 2 || !strings.Contains(got.stderr, named) || !strings.Contains(got.stderr, "usage:") ||
			got.stdout != "" {
			t.Errorf("-addr=%q: exit %d, stdout %q, stderr %q", addr, got.code, got.stdout, got.stderr)
		}
	}
}

// TestServeRefusesABadConcurrency: -concurrency is from 1 to 10000, checked before anything
// starts (before, -concurrency -5 started the server, or with -push exited 1 once listening).
func TestServeRefusesABadConcurrency(t *testing.T) {
	push := []string{"-push", "t=http://127.0.0.1:9/hook"}
	for _, args := range [][]string{{"-concurrency", "-5"}, {"-concurrency=0"}, {"-concurrency=10001"},
		append([]string{"-concurrency", "-5"}, push...), append([]string{"-concurrency=0"}, push...)} {
		got := runBinary(t, append([]string{"serve", "-addr=127.0.0.1:0"}, args...)...)
		if got.code != 2 || !strings.Contains(got.stderr, "-concurrency: must be from 1 to 10000") ||
			!strings.Contains(got.stderr, "usage:") || got.stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, got.code, got.stdout, got.stderr)
		}
	}
}
