package redisched

import (
	"errors"
	"strings"
	"testing"
)

// shortKey is Python's topic_config.secret_problem message for a key under 16 bytes.
const shortKey = "must give a key of at least 16 bytes (whsec_ and the base64 of 16 bytes or more, " +
	"or 16+ UTF-8 bytes)"

// TestWebhookHandlerRefusesWeakSecrets: a secret must give a key of 16 bytes or more, as the
// Python service requires (before, WebhookHandler signed with a 5-byte key), and a whsec_
// secret must be followed by base64 that decodes to something.
func TestWebhookHandlerRefusesWeakSecrets(t *testing.T) {
	refused := map[string]string{
		"shortkey":                         shortKey,
		strings.Repeat("x", 15):            shortKey,
		"whsec_" + strings.Repeat("A", 20): shortKey, // 15 bytes
		"whsec_!!":                         "must be whsec_ followed by base64 (Standard Webhooks), or not start with whsec_",
		"whsec_!!!!":                       "must be whsec_ followed by base64 (Standard Webhooks), or not start with whsec_",
		"bad\xff utf-8 secret here":        "must be valid UTF-8",
	}
	good := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	for secret, message := range refused {
		if got := SecretProblem(secret); got != message {
			t.Errorf("SecretProblem(%q) = %q, want %q", secret, got, message)
		}
		_, err := WebhookHandler("http://127.0.0.1:9/hook", []string{good, secret}, 0)
		var bad *InvalidArgument
		if !errors.As(err, &bad) || bad.Field != "secrets[1]" || bad.Message != message {
			t.Errorf("WebhookHandler with %q: %v", secret, err)
		}
	}
	for _, secret := range []string{good, strings.Repeat("x", 16), "whsec_" + strings.Repeat("A", 24)} {
		if problem := SecretProblem(secret); problem != "" {
			t.Errorf("SecretProblem(%q) = %q", secret, problem)
		}
		if _, err := WebhookHandler("http://127.0.0.1:9/hook", []string{secret}, 0); err != nil {
			t.Errorf("WebhookHandler with %q: %v", secret, err)
		}
	}
}
