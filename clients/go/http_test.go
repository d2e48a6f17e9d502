package redisched

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// testServer is NewServer(c, opts) on a free loopback port, closed with the test.
func testServer(t *testing.T, c *Client, opts ServerOptions) *httptest.Server {
	t.Helper()
	handler, err := NewServer(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv
}

// sendWith sends a request with these headers ("Host" included) and decodes its JSON reply.
func sendWith(t *testing.T, srv *httptest.Server, method, path string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	status, _, decoded := exchange(t, srv, method, path, headers, body)
	return status, decoded
}

// exchange is sendWith with the reply's headers.
func exchange(t *testing.T, srv *httptest.Server, method, path string, headers map[string]string, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range headers {
		if name == "Host" {
			req.Host = value
		} else {
			req.Header.Set(name, value)
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var decoded map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&decoded); err != nil {
		t.Fatalf("%s %s: a reply that is not JSON (%v)", method, path, err)
	}
	return resp.StatusCode, resp.Header, decoded
}
