package redisched

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// invalidField is the field of err when it is an *InvalidArgument, else "".
func invalidField(err error) string {
	var bad *InvalidArgument
	if errors.As(err, &bad) {
		return bad.Field
	}
	return ""
}

// reservedJob puts job "r" and reserves it, then puts job "q" (left ready); the reserved job.
func reservedJob(t *testing.T, c *Client, topic string) *Job {
	t.Helper()
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "r", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	jobs, err := c.Reserve(ctx, topic, 1, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatal(jobs, err)
	}
	if _, _, err := c.Put(ctx, topic, "q", []byte("y"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return jobs[0]
}

// stateOf is the state of job id, "" when there is none.
func stateOf(t *testing.T, c *Client, topic, id string) string {
	t.Helper()
	job, err := c.Get(context.Background(), topic, id)
	if err != nil {
		t.Fatal(err)
	}
	if job == nil {
		return ""
	}
	return job.State
}

// TestAckAndLeaseChecks: count and ttrMs are checked as Lease checks them, and each job as
// checkReserved, before anything is sent (no job acked, none leased).
func TestAckAndLeaseChecks(t *testing.T) {
	c, topic := testClient(t, "go-checks-")
	ctx := context.Background()
	job := reservedJob(t, c, topic)
	for _, b := range []struct {
		done         []*Job
		count, ttrMs int64
		field        string
	}{
		{[]*Job{job}, 1, -60_000, "ttrMs"}, {[]*Job{job}, 5000, 0, "count"}, {[]*Job{job}, 0, 0, "count"},
		{nil, 5000, 0, "count"}, {[]*Job{nil}, 1, 0, "done[0]"}, {[]*Job{job, {ID: "q"}}, 1, 0, "done[1]"},
		{[]*Job{{Token: "1"}}, 1, 0, "done[0].ID"},
	} {
		_, _, err := c.AckAndLease(ctx, topic, b.done, b.count, b.ttrMs)
		if invalidField(err) != b.field {
			t.Errorf("AckAndLease(%d jobs, %d, %d): want an InvalidArgument for %s, got %v", len(b.done), b.count, b.ttrMs, b.field, err)
		}
	}
	if s, q := stateOf(t, c, topic, "r"), stateOf(t, c, topic, "q"); s != "reserved" || q != "ready" {
		t.Fatalf("a refused call changed the jobs: r %s, q %s", s, q)
	}
	lease, acked, err := c.AckAndLease(ctx, topic, []*Job{job}, 1, 0)
	if err != nil || len(acked) != 1 || !acked[0] || len(lease.Jobs) != 1 || lease.Jobs[0].ID != "q" {
		t.Fatal(lease, acked, err)
	}
}

// TestAckManyChecks: a nil job or one without a token is an *InvalidArgument (no panic, nothing
// sent); no job at all is an empty result.
func TestAckManyChecks(t *testing.T) {
	c, topic := testClient(t, "go-checks-")
	ctx := context.Background()
	job := reservedJob(t, c, topic)
	for _, b := range []struct {
		done  []*Job
		field string
	}{{[]*Job{nil}, "done[0]"}, {[]*Job{job, {ID: "q"}}, "done[1]"}, {[]*Job{job, {ID: "", Token: "1"}}, "done[1].ID"}} {
		if _, err := c.AckMany(ctx, topic, b.done); invalidField(err) != b.field {
			t.Errorf("AckMany: want an InvalidArgument for %s, got %v", b.field, err)
		}
	}
	if state := stateOf(t, c, topic, "r"); state != "reserved" {
		t.Fatalf("a refused AckMany acked: %s", state)
	}
	for _, done := range [][]*Job{nil, {}} {
		if acked, err := c.AckMany(ctx, topic, done); err != nil || acked == nil || len(acked) != 0 {
			t.Errorf("AckMany of none: %v %v", acked, err)
		}
	}
	if acked, err := c.AckMany(ctx, topic, []*Job{job}); err != nil || len(acked) != 1 || !acked[0] {
		t.Fatal(acked, err)
	}
}

// TestRequeueLimit: the limit is checked as Python's (1 to 10000) before anything is sent.
func TestRequeueLimit(t *testing.T) {
	c, topic := testClient(t, "go-checks-")
	ctx := context.Background()
	for _, limit := range []int64{-1, 0, 10_001} {
		if _, err := c.Requeue(ctx, topic, limit); invalidField(err) != "limit" {
			t.Errorf("Requeue limit %d: want an InvalidArgument for limit, got %v", limit, err)
		}
	}
	if next, err := c.Requeue(ctx, topic, 10_000); err != nil || next != 0 {
		t.Fatal(next, err)
	}
}

// TestBadTopicIsInvalidArgument: every call on a job refuses a topic Python refuses as an
// *InvalidArgument naming the topic, as the README promises.
func TestBadTopicIsInvalidArgument(t *testing.T) {
	c, _ := testClient(t, "go-checks-")
	ctx := context.Background()
	const topic = "a{"
	job := &Job{Topic: topic, ID: "j", Token: "1"}
	calls := map[string]func() error{
		"Get":        func() error { _, err := c.Get(ctx, topic, "j"); return err },
		"Delete":     func() error { _, err := c.Delete(ctx, topic, "j", 0); return err },
		"Bury":       func() error { return c.Bury(ctx, job, "x") },
		"Touch":      func() error { _, err := c.Touch(ctx, job, 0); return err },
		"ReleaseJob": func() error { _, err := c.ReleaseJob(ctx, job, 0, "", false); return err },
		"AckWith":    func() error { return c.AckWith(ctx, job, "r") },
		"AckMany":    func() error { _, err := c.AckMany(ctx, topic, []*Job{job}); return err },
		"AckAndLease": func() error {
			_, _, err := c.AckAndLease(ctx, topic, []*Job{job}, 1, 0)
			return err
		},
		"Requeue": func() error { _, err := c.Requeue(ctx, topic, 1); return err },
	}
	for name, call := range calls {
		if err := call(); invalidField(err) != "topic" {
			t.Errorf("%s: want an InvalidArgument for topic, got %v", name, err)
		}
	}
}

// TestCronDialect: Python's dialect (cronsim): L, LW, # and lower case are taken, '?' and 'H'
// are refused naming the bad field (conformance/cron_times.json holds the whole list).
func TestCronDialect(t *testing.T) {
	for _, expr := range []string{"0 0 L * *", "0 0 LW * *", "0 0 lw * *", "0 0 * * 1#2", "0 0 * * 5L", "0 0 l * *", "0 0 * jul-aug sun"} {
		if got, err := CronExpression(expr, time.UTC); err != nil || got != expr {
			t.Errorf("%q: %q, %v", expr, got, err)
		}
	}
	for expr, reason := range map[string]string{"0 0 ? * *": "Bad day-of-month", "0 0 * * ?": "Bad day-of-week", "H 0 * * *": "Bad minute"} {
		if _, err := CronExpression(expr, time.UTC); invalidField(err) != "cron" || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: want an InvalidArgument saying %q, got %v", expr, reason, err)
		}
	}
}

// TestCronLength: a cron expression of over 1024 characters is refused naming cron before it
// is parsed (a valid one of 200 KB was stored whole in its schedule's record), counted in
// characters as Python counts them: 1024 of them taken, however many bytes.
func TestCronLength(t *testing.T) {
	for _, expr := range []string{strings.Repeat("0,", 100_000) + "0 * * * *", strings.Repeat("0,", 508) + "0 * * * *"} {
		_, err := CronExpression(expr, time.UTC)
		if invalidField(err) != "cron" || !strings.HasSuffix(err.Error(), "must be at most 1024 characters") {
			t.Errorf("%d characters: %v", len(expr), err)
		}
	}
	for _, expr := range []string{strings.Repeat("0,", 507) + "0  * * * *", strings.Repeat("\u3000", 1015) + "* * * * *"} {
		if _, err := CronExpression(expr, time.UTC); err != nil {
			t.Errorf("%.20q...: %v", expr, err)
		}
	}
}

// rawRequest sends one HTTP/1.1 request line and body as written (a path Go's client would
// refuse) to srv; the status and the body's error object.
func rawRequest(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	request := method + " " + path + " HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() + "\r\nConnection: close\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply struct {
		Error map[string]any `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Fatalf("%s %s: a reply that is not JSON (%v)", method, path, err)
	}
	return resp.StatusCode, reply.Error
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestPutRefusesDelayWithRunAt: DelayMs and RunAtMs together are refused naming DelayMs, as
// Python refuses delay with run_at (before, the delay was silently dropped).
func TestPutRefusesDelayWithRunAt(t *testing.T) {
	c, topic := testClient(t, "go-checks-")
	ctx := context.Background()
	_, _, err := c.Put(ctx, topic, "j", []byte("x"), PutOptions{RunAtMs: time.Now().UnixMilli(), DelayMs: 5000})
	if invalidField(err) != "DelayMs" || err.Error() != "DelayMs: give DelayMs or RunAtMs, not both" {
		t.Fatalf("got %v", err)
	}
	if stateOf(t, c, topic, "j") != "" {
		t.Fatal("a refused put stored the job")
	}
}

// TestServerRequestChecks: the server reads a request as the Node server does.
func TestServerRequestChecks(t *testing.T) {
	c, topic := testClient(t, "go-checks-")
	handler, err := NewServer(c, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	for _, b := range []struct {
		method, path, body string
		status             int
		code               string
		field              any
	}{
		{"POST", "/schedule/" + topic, `{"id":"e","contents":1} trailing`, 400, "malformed_json", nil},
		{"POST", "/schedule/" + topic, `{"id":"e","contents":1} {}`, 400, "malformed_json", nil},
		{"POST", "/schedule/" + topic, `{"ID":"e","contents":1}`, 400, "invalid", "ID"},
		{"POST", "/schedule/" + topic, `{"id":"e","Contents":1}`, 400, "invalid", "Contents"},
		{"POST", "/cancel/" + topic, `{"id":"e","x":1}`, 400, "invalid", "x"},
		{"POST", "/schedule/" + topic, `[1]`, 400, "invalid", nil},
		{"POST", "/schedule/" + topic, `"x"`, 400, "invalid", nil},
		{"POST", "/healthz", ``, 405, "method_not_allowed", nil},
		{"DELETE", "/healthz", ``, 405, "method_not_allowed", nil},
	} {
		status, e := rawRequest(t, srv, b.method, b.path, b.body)
		if status != b.status || e == nil || e["code"] != b.code || e["field"] != b.field {
			t.Errorf("%s %s %s: got %d %v", b.method, b.path, b.body, status, e)
		}
	}
	if _, e := rawRequest(t, srv, "POST", "/schedule/"+topic, `[1]`); e["message"] != "the request body must be a JSON object" {
		t.Errorf("a non-object: %v", e)
	}
	if job, err := c.Get(context.Background(), topic, "e"); err != nil || job != nil {
		t.Fatalf("a refused request stored a job: %v %v", job, err)
	}
	if status, e := rawRequest(t, srv, "POST", "/schedule/"+topic, ` {"id":"e","contents":1} `+"\n"); status != 201 || e != nil {
		t.Fatalf("a good request: %d %v", status, e)
	}
}

// TestReleaseAndBuryTextLimit: Release's error text and Bury's reason are held to Abort's
// limit, 65536 characters (runes), as the Python client's validate.text; nothing is sent and
// the job stays reserved (before, any length was stored).
func TestReleaseAndBuryTextLimit(t *testing.T) {
	c, topic := testClient(t, "go-checks-")
	ctx := context.Background()
	job := reservedJob(t, c, topic)
	long := strings.Repeat("x", 65_537)
	_, releaseErr := c.Release(ctx, job, 0, long)
	buryErr := c.Bury(ctx, job, long)
	for _, got := range []struct {
		err   error
		field string
	}{{releaseErr, "errorText"}, {buryErr, "reason"}} {
		var bad *InvalidArgument
		if !errors.As(got.err, &bad) || bad.Field != got.field || bad.Message != "must be at most 65536 characters" {
			t.Errorf("%s: %v", got.field, got.err)
		}
	}
	if state := stateOf(t, c, topic, "r"); state != "reserved" {
		t.Fatalf("the job is %s, not reserved", state)
	}
	if err := c.Bury(ctx, job, strings.Repeat("\U0001F600", 65_536)); err != nil {
		t.Fatalf("65536 characters of 4 bytes are within the limit: %v", err)
	}
}
