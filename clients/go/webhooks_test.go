package redisched

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// timeoutMessage is WebhookHandler's refusal of a timeout (Python's is in seconds).
const timeoutMessage = "must be more than 0 and at most 5m0s (0: the default, 10s)"

// webhookCase is one case of conformance/webhooks.json.
type webhookCase struct {
	Note    string
	Webhook map[string]json.RawMessage
	Field   string
	Error   string
}

// webhookCases reads conformance/webhooks.json, next to $REDISCHED_VECTORS_DIR.
func webhookCases(t *testing.T) []webhookCase {
	t.Helper()
	dir := os.Getenv("REDISCHED_VECTORS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "conformance", "vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "..", "webhooks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []webhookCase
	if err := json.Unmarshal(data, &cases); err != nil || len(cases) < 50 {
		t.Fatalf("%d cases: %v", len(cases), err)
	}
	return cases
}

// webhookArgs are WebhookHandler's arguments for a vector's webhook, or false when Go's types
// cannot give them (a URL that is not a string, secrets that are not strings, a timeout that is
// not a number, or 0, which is the default here).
func webhookArgs(webhook map[string]json.RawMessage) (target string, secrets []string, timeout time.Duration, ok bool) {
	if json.Unmarshal(webhook["url"], &target) != nil {
		return "", nil, 0, false
	}
	if raw, given := webhook["secrets"]; given && (string(raw) == "null" || json.Unmarshal(raw, &secrets) != nil) {
		return "", nil, 0, false
	}
	if raw, given := webhook["timeout"]; given {
		var seconds float64
		if string(raw) == "null" || json.Unmarshal(raw, &seconds) != nil || seconds == 0 {
			return "", nil, 0, false
		}
		timeout = time.Duration(seconds * float64(time.Second))
	}
	return target, secrets, timeout, true
}

// TestWebhookVectors: WebhookHandler takes the webhooks the Python service takes and refuses the
// others naming the same field, in its words (conformance/webhooks.json). Before, it took three
// secrets, one of 600 characters, a URL with a space or no host ("http:/x").
func TestWebhookVectors(t *testing.T) {
	checked := 0
	for _, c := range webhookCases(t) {
		target, secrets, timeout, ok := webhookArgs(c.Webhook)
		if !ok {
			continue
		}
		checked++
		_, err := WebhookHandler(target, secrets, timeout)
		if c.Error == "" {
			if err != nil {
				t.Errorf("%s: %v", c.Note, err)
			}
			continue
		}
		field, message := strings.TrimPrefix(c.Field, "webhook."), c.Error
		if field == "timeout" {
			message = timeoutMessage
		}
		var bad *InvalidArgument
		if !errors.As(err, &bad) || bad.Field != field || bad.Message != message {
			t.Errorf("%s: want %s: %s, got %v", c.Note, field, message, err)
		}
	}
	if checked < 60 {
		t.Errorf("only %d cases checked", checked)
	}
}
