package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesWebhookVectors: serve refuses the -push URLs and -secret values that the
// Python service refuses as a topic's webhook, in its words (conformance/webhooks.json, next to
// $REDISCHED_VECTORS_DIR), and nothing starts. Before, -push t=http:/x started a server, as did
// three -secret values or one of 600 characters.
func TestServeRefusesWebhookVectors(t *testing.T) {
	dir := os.Getenv("REDISCHED_VECTORS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "..", "conformance", "vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "..", "webhooks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Note         string
		Webhook      map[string]json.RawMessage
		Field, Error string
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range cases {
		var target string
		var secrets []string
		_, timed := c.Webhook["timeout"]
		if c.Error == "" || timed || json.Unmarshal(c.Webhook["url"], &target) != nil ||
			(c.Webhook["secrets"] != nil && json.Unmarshal(c.Webhook["secrets"], &secrets) != nil) {
			continue // accepted, or not something the command line can give
		}
		if c.Webhook["secrets"] != nil && secrets == nil {
			continue // null
		}
		args := []string{"serve", "-addr=127.0.0.1:0", "-push", "t=" + target}
		for _, s := range secrets {
			args = append(args, "-secret", s)
		}
		want := fmt.Sprintf("-push t=%s: %s", target, c.Error)
		if c.Field != "webhook.url" {
			var i int
			option := "-secret"
			if _, err := fmt.Sscanf(c.Field, "webhook.secrets[%d]", &i); err == nil && len(secrets) > 1 {
				option = fmt.Sprintf("-secret #%d", i+1)
			}
			want = option + ": " + c.Error
		}
		got := runBinary(t, args...)
		if got.code != 2 || !strings.HasPrefix(got.stderr, "redisched-go serve: "+want+"\n") || got.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", c.Note, got.code, got.stdout, got.stderr)
		}
		checked++
	}
	if checked < 30 {
		t.Errorf("only %d cases checked", checked)
	}
}
