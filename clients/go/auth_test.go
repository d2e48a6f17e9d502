package redisched

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

var testTokens = []string{"first-token-0123456789", "second-token-abcdefghij"}

type reply struct {
	status    int
	challenge string
	body      map[string]any
}

func send(t *testing.T, srv *httptest.Server, method, path, authorization, body string) reply {
	t.Helper()
	headers := map[string]string{}
	if authorization != "" {
		headers["Authorization"] = authorization
	}
	status, header, decoded := exchange(t, srv, method, path, headers, body)
	return reply{status, header.Get("WWW-Authenticate"), decoded}
}

// TestServerTokensRefuseEveryRouteButHealthz: with tokens, a request without an accepted one is
// 401 with the server's JSON error naming Authorization, and changes nothing (before, NewServer
// had no tokens: anyone who could connect scheduled and cancelled jobs).
func TestServerTokensRefuseEveryRouteButHealthz(t *testing.T) {
	c, topic := testClient(t, "go-auth-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "kept", []byte("x"), PutOptions{DelayMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, c, ServerOptions{Tokens: testTokens})
	want := map[string]any{"code": "unauthorized", "message": "send Authorization: Bearer <token>",
		"field": "Authorization"}
	for _, authorization := range []string{"", "Bearer " + testTokens[0] + "x", "Bearer " + testTokens[0][:20],
		"Bearer wrong-token-0123456789", testTokens[0], "Basic " + testTokens[0], "Bearer" + testTokens[0],
		"Bearer ", "Bearer", "Token " + testTokens[1], "Bearer " + testTokens[0] + "," + testTokens[1]} {
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/schedule/" + topic, `{"id":"refused","contents":1}`},
			{"POST", "/cancel/" + topic, `{"id":"kept"}`},
			{"GET", "/nowhere", ""},
			{"GET", "/schedule/" + topic, ""},
		} {
			got := send(t, srv, r.method, r.path, authorization, r.body)
			e, _ := got.body["error"].(map[string]any)
			if got.status != 401 || got.challenge != `Bearer realm="redisched"` || len(e) != 3 ||
				e["code"] != want["code"] || e["message"] != want["message"] || e["field"] != want["field"] {
				t.Errorf("%s %s with %q: %+v", r.method, r.path, authorization, got)
			}
		}
	}
	if job, err := c.Get(ctx, topic, "refused"); err != nil || job != nil {
		t.Errorf("a refused schedule stored a job: %v %v", job, err)
	}
	if job, err := c.Get(ctx, topic, "kept"); err != nil || job == nil {
		t.Errorf("a refused cancel deleted the job: %v %v", job, err)
	}
	if got := send(t, srv, "GET", "/healthz", "", ""); got.status != 200 || got.body["status"] != "ok" {
		t.Errorf("/healthz without a token: %+v", got)
	}
	if got := send(t, srv, "POST", "/healthz", "", ""); got.status != 405 {
		t.Errorf("POST /healthz without a token, routed as before: %+v", got)
	}
}

// TestServerTokensAcceptEachToken: each token is accepted, the scheme in any case.
func TestServerTokensAcceptEachToken(t *testing.T) {
	c, topic := testClient(t, "go-auth-")
	srv := testServer(t, c, ServerOptions{Tokens: testTokens})
	for i, authorization := range []string{"Bearer " + testTokens[0], "bearer " + testTokens[1],
		"BEARER   " + testTokens[1] + "  "} {
		id := "job-" + itoa(i)
		got := send(t, srv, "POST", "/schedule/"+topic, authorization, `{"id":"`+id+`","contents":1,"delay":60}`)
		if got.status != 201 || got.body["status"] != "created" {
			t.Errorf("schedule with %q: %+v", authorization, got)
		}
		if job, err := c.Get(context.Background(), topic, id); err != nil || job == nil {
			t.Errorf("schedule with %q stored nothing: %v", authorization, err)
		}
		if got := send(t, srv, "POST", "/cancel/"+topic, authorization, `{"id":"`+id+`"}`); got.status != 200 {
			t.Errorf("cancel with %q: %+v", authorization, got)
		}
	}
	if got := send(t, srv, "GET", "/nowhere", "Bearer "+testTokens[0], ""); got.status != 404 {
		t.Errorf("an unknown route with a token: %+v", got)
	}
	open := testServer(t, c, ServerOptions{})
	if got := send(t, open, "POST", "/schedule/"+topic, "", `{"id":"open","contents":1}`); got.status != 201 {
		t.Errorf("without tokens, as before: %+v", got)
	}
}

// TestNewServerRefusesWeakTokens: a token under 16 characters, or not printable, is an
// *InvalidArgument naming it.
func TestNewServerRefusesWeakTokens(t *testing.T) {
	c, _ := testClient(t, "go-auth-")
	for _, b := range []struct {
		tokens       []string
		field, words string
	}{
		{[]string{strings.Repeat("x", 15)}, "tokens[0]", "each token must be at least 16 characters"},
		{[]string{testTokens[0], "short"}, "tokens[1]", "each token must be at least 16 characters"},
		{[]string{"0123456789abcdef\n"}, "tokens[0]", "each token must be 1 to 4096 printable characters"},
		{[]string{strings.Repeat("x", 4097)}, "tokens[0]", "each token must be 1 to 4096 printable characters"},
		{[]string{""}, "tokens[0]", "each token must be 1 to 4096 printable characters"},
		{[]string{"0123456789abcdef\xff"}, "tokens[0]", "each token must be 1 to 4096 printable characters"},
	} {
		handler, err := NewServer(c, ServerOptions{Tokens: b.tokens})
		var bad *InvalidArgument
		if handler != nil || !errors.As(err, &bad) || bad.Field != b.field || !strings.HasPrefix(bad.Message, b.words) {
			t.Errorf("%q: %v %v", b.tokens, handler, err)
		}
	}
	if problem := TokenProblem(strings.Repeat("é", 16)); problem != "" {
		t.Errorf("16 characters, not bytes: %s", problem)
	}
}

// TestIsLoopback: 127.0.0.0/8, ::1 and localhost only.
func TestIsLoopback(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "127.255.0.9", "::1", "0:0:0:0:0:0:0:1", "localhost"} {
		if !IsLoopback(host) {
			t.Errorf("%s: not loopback", host)
		}
	}
	for _, host := range []string{"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "example.com", "localhost.example.com", ""} {
		if IsLoopback(host) {
			t.Errorf("%s: loopback", host)
		}
	}
}
