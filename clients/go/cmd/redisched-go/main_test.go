package main

// The command line, run as a user runs it: the binary built once, against
// REDISCHED_TEST_REDIS_URL (so a command that wrongly starts talks to a server the test owns).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

const (
	testToken  = "cli-token-0123456789abcdef"
	shortToken = "each token must be at least 16 characters, so that it cannot be guessed (try: python3 -c " +
		"'import secrets; print(secrets.token_urlsafe())')"
	exposed = " is reachable from other machines: set API tokens (-token or REDISCHED_API_TOKENS), or pass " +
		"-insecure to serve without authentication"
)

// runWithEnv is runBinary with env added (and no token or insecure variable unless given).
func runWithEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	t.Setenv("REDISCHED_API_TOKENS", "")
	t.Setenv("REDISCHED_INSECURE", "")
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		t.Setenv(name, value)
	}
	return runBinary(t, args...)
}

// served starts serve with args and env, waits for its ready line, calls use with its port, then
// stops it with SIGTERM at once; its exit code.
func served(t *testing.T, args, env []string, use func(port int)) int {
	t.Helper()
	url := os.Getenv("REDISCHED_TEST_REDIS_URL")
	if url == "" {
		t.Fatal("set REDISCHED_TEST_REDIS_URL to a redis-server you own")
	}
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.Env = append(os.Environ(), "REDISCHED_REDIS_URL="+url, "REDISCHED_API_TOKENS=", "REDISCHED_INSECURE=")
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck // stopped below unless the test failed
	var ready struct {
		Ready bool `json:"ready"`
		Port  int  `json:"port"`
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() }) //nolint:errcheck // a stuck server
	defer timer.Stop()
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &ready) != nil || !ready.Ready {
		cmd.Wait() //nolint:errcheck // it exited; its stderr says why
		t.Fatalf("%v %v: not ready: %q %v %s", args, env, line, err, stderr.String())
	}
	if use != nil {
		use(ready.Port)
	}
	cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // Wait reports it
	cmd.Wait()                          //nolint:errcheck // the exit code says
	return cmd.ProcessState.ExitCode()
}

// TestServeRefusesShortTokens: -token and $REDISCHED_API_TOKENS hold tokens of at least 16
// characters, in the Python service's words, naming the option or the variable (before, serve
// had no tokens: the routes answered anyone).
func TestServeRefusesShortTokens(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		named     string
	}{
		{[]string{"-token", "short"}, nil, "-token: " + shortToken},
		{[]string{"-token", testToken, "-token=0123456789abcde"}, nil, "-token #2: " + shortToken},
		{nil, []string{"REDISCHED_API_TOKENS=short"}, "REDISCHED_API_TOKENS: " + shortToken},
		{nil, []string{"REDISCHED_API_TOKENS=" + testToken + ",short"}, "REDISCHED_API_TOKENS #2: " + shortToken},
		{[]string{"-token="}, nil, "-token: each token must be 1 to 4096 printable characters"},
	} {
		got := runWithEnv(t, c.env, append([]string{"serve", "-addr=127.0.0.1:0"}, c.args...)...)
		if got.code != 2 || !strings.Contains(got.stderr, "redisched-go serve: "+c.named) ||
			!strings.Contains(got.stderr, "usage:") || got.stdout != "" {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q", c.args, c.env, got.code, got.stdout, got.stderr)
		}
	}
}

// TestServeRefusesAnExposedAddrWithoutTokens: an -addr other machines can reach needs tokens or
// -insecure, in the Python service's words (before, -addr 0.0.0.0:7273 served every network
// without authentication).
func TestServeRefusesAnExposedAddrWithoutTokens(t *testing.T) {
	for _, c := range []struct {
		addr, host string
		env        []string
	}{
		{"0.0.0.0:0", "0.0.0.0", nil}, {"[::]:0", "::", nil}, {"192.0.2.1:0", "192.0.2.1", nil},
		{"0.0.0.0:0", "0.0.0.0", []string{"REDISCHED_INSECURE=0"}},
		{"0.0.0.0:0", "0.0.0.0", []string{"REDISCHED_API_TOKENS= , "}},
	} {
		got := runWithEnv(t, c.env, "serve", "-addr", c.addr)
		if got.code != 2 || !strings.Contains(got.stderr, "redisched-go serve: -addr: "+c.host+exposed) ||
			got.stdout != "" {
			t.Errorf("%s %v: exit %d, stdout %q, stderr %q", c.addr, c.env, got.code, got.stdout, got.stderr)
		}
	}
	got := runWithEnv(t, []string{"REDISCHED_INSECURE=maybe"}, "serve", "-addr", "0.0.0.0:0")
	if got.code != 2 || !strings.Contains(got.stderr, `REDISCHED_INSECURE: must be one of 1/0, true/false, yes/no, on/off, not "maybe"`) {
		t.Errorf("REDISCHED_INSECURE=maybe: exit %d, stderr %q", got.code, got.stderr)
	}
}

// TestServeListensOnAnExposedAddrWithInsecureOrATokenAndStops: -insecure, $REDISCHED_INSECURE=1,
// -token or $REDISCHED_API_TOKENS let serve listen on 0.0.0.0; it is stopped at once.
func TestServeListensOnAnExposedAddrWithInsecureOrATokenAndStops(t *testing.T) {
	for _, c := range []struct{ args, env []string }{
		{[]string{"-insecure"}, nil}, {nil, []string{"REDISCHED_INSECURE=1"}},
		{[]string{"-token", testToken}, nil}, {nil, []string{"REDISCHED_API_TOKENS=" + testToken}},
	} {
		if code := served(t, append([]string{"-addr=0.0.0.0:0"}, c.args...), c.env, nil); code != 0 {
			t.Errorf("%v %v: exit %d", c.args, c.env, code)
		}
	}
}

// TestServeTokensGuardTheRoutes: serve passes -token (else $REDISCHED_API_TOKENS) to the server;
// -token wins over the variable.
func TestServeTokensGuardTheRoutes(t *testing.T) {
	other := "env-token-abcdefghijklmnop"
	topic := fmt.Sprintf("go-cli-auth-%d", time.Now().UnixNano())
	post := func(port int, authorization string) (int, string) {
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/schedule/%s", port, topic),
			strings.NewReader(`{"id": "x", "contents": 1}`))
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}
	check := func(port int, authorization string, want int) {
		if status, challenge := post(port, authorization); status != want ||
			(want == 401) != (challenge == `Bearer realm="redisched"`) {
			t.Errorf("%q: %d %q, want %d", authorization, status, challenge, want)
		}
	}
	served(t, []string{"-addr=127.0.0.1:0", "-token", testToken, "-token", other},
		[]string{"REDISCHED_API_TOKENS=ignored-token-0123456789"}, func(port int) {
			check(port, "", 401)
			check(port, "Bearer ignored-token-0123456789", 401)
			check(port, "Bearer "+other, 201)
			if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err != nil || resp.StatusCode != 200 {
				t.Errorf("/healthz: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
		})
	served(t, []string{"-addr=127.0.0.1:0"}, []string{"REDISCHED_API_TOKENS=" + testToken + ", " + other},
		func(port int) {
			check(port, "", 401)
			check(port, "Bearer "+testToken, 200) // the job above, replaced
			check(port, "Bearer "+other, 200)
		})
}
