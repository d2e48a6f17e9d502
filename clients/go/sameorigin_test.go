package redisched

import (
	"context"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func serverPort(srv *httptest.Server) string {
	return srv.URL[strings.LastIndex(srv.URL, ":")+1:]
}

// TestServerRefusesForeignHosts: a Host that is no IP address, not localhost and not an allowed
// host is 400 bad_host, as the Python service answers it (DNS rebinding; before, the server
// answered any Host).
func TestServerRefusesForeignHosts(t *testing.T) {
	c, topic := testClient(t, "go-origin-")
	srv := testServer(t, c, ServerOptions{AllowedHosts: []string{"sched.example"}})
	port := serverPort(srv)
	want := map[string]any{"error": map[string]any{"code": "bad_host", "field": "Host",
		"message": "this service does not answer for host 'attacker.example' (add it with --allowed-host)"}}
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/schedule/" + topic, `{"id":"j","contents":1}`}, {"GET", "/healthz", ""}} {
		status, got := sendWith(t, srv, r.method, r.path, map[string]string{"Host": "attacker.example:" + port}, r.body)
		if status != 400 || !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: %d %v", r.method, r.path, status, got)
		}
	}
	if job, err := c.Get(context.Background(), topic, "j"); err != nil || job != nil {
		t.Errorf("a refused request stored %v (%v)", job, err)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, "Sched.Example.:" + port, "10.1.2.3"} {
		if status, got := sendWith(t, srv, "GET", "/healthz", map[string]string{"Host": host}, ""); status != 200 {
			t.Errorf("Host %s: %d %v", host, status, got)
		}
	}
	anyHost := testServer(t, c, ServerOptions{AllowedHosts: []string{"*"}})
	if status, got := sendWith(t, anyHost, "GET", "/healthz", map[string]string{"Host": "attacker.example"}, ""); status != 200 {
		t.Errorf("AllowedHosts *: %d %v", status, got)
	}
}

// TestServerRefusesCrossSiteWrites: a POST whose Origin is not the server's own, or with
// "Sec-Fetch-Site: cross-site", is 403 cross_site and changes nothing, before the token check.
func TestServerRefusesCrossSiteWrites(t *testing.T) {
	c, topic := testClient(t, "go-origin-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "kept", []byte("x"), PutOptions{DelayMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, c, ServerOptions{})
	port := serverPort(srv)
	other := fmt.Sprintf("http://127.0.0.1:%d", mustAtoi(t, port)+1)
	for _, r := range []struct {
		headers    map[string]string
		field, why string
	}{
		{map[string]string{"Origin": "https://evil.example"}, "Origin", "origin 'https://evil.example' is not this service's own"},
		{map[string]string{"Origin": other}, "Origin", "origin '" + other + "' is not this service's own"},
		{map[string]string{"Origin": "null"}, "Origin", "origin 'null' is not this service's own"},
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site", "the request comes from another site"},
		{map[string]string{"Sec-Fetch-Site": "Cross-Site", "Origin": "http://127.0.0.1:" + port}, "Sec-Fetch-Site", "the request comes from another site"},
	} {
		want := map[string]any{"error": map[string]any{"code": "cross_site", "field": r.field,
			"message": r.why + ": state-changing requests are refused"}}
		for _, path := range [][2]string{{"/schedule/" + topic, `{"id":"refused","contents":1}`}, {"/cancel/" + topic, `{"id":"kept"}`}} {
			if status, got := sendWith(t, srv, "POST", path[0], r.headers, path[1]); status != 403 || !reflect.DeepEqual(got, want) {
				t.Errorf("%v %s: %d %v", r.headers, path[0], status, got)
			}
		}
	}
	if job, _ := c.Get(ctx, topic, "refused"); job != nil {
		t.Error("a cross-site schedule was stored")
	}
	if job, _ := c.Get(ctx, topic, "kept"); job == nil {
		t.Error("a cross-site cancel deleted the job")
	}
	if status, _ := sendWith(t, srv, "GET", "/healthz", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, ""); status != 200 {
		t.Errorf("a GET changes nothing, yet it was refused: %d", status)
	}
	for _, headers := range []map[string]string{{}, {"Origin": "http://127.0.0.1:" + port},
		{"Origin": "http://LOCALHOST:" + port, "Host": "localhost:" + port}, {"Sec-Fetch-Site": "same-origin"},
		{"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "none"}} {
		if status, got := sendWith(t, srv, "POST", "/schedule/"+topic, headers, `{"id":"j","contents":1}`); status != 200 && status != 201 {
			t.Errorf("%v: %d %v", headers, status, got)
		}
	}
	guarded := testServer(t, c, ServerOptions{Tokens: testTokens})
	if status, _ := sendWith(t, guarded, "POST", "/schedule/"+topic, map[string]string{"Origin": "https://evil.example"}, `{"id":"j","contents":1}`); status != 403 {
		t.Errorf("with tokens, a cross-site POST is %d, not 403 before the token check", status)
	}
}

func mustAtoi(t *testing.T, text string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(text, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
