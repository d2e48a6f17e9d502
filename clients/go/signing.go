package redisched

// Webhook signatures in the Standard Webhooks format, as src/redisched/http/signing.py makes
// them: webhook-id, webhook-timestamp (epoch seconds) and webhook-signature, "v1,<base64
// HMAC-SHA256 of "<id>.<timestamp>.<body>">", one per secret, space-separated. A secret is
// "whsec_<base64>" (the key is the decoded bytes) or any other string (its UTF-8 bytes).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MinSecretKeyBytes is the shortest HMAC key a signing secret may give, as
// src/redisched/topic_config.py (a 1-byte key is guessed at once).
const MinSecretKeyBytes = 16

// SecretKey is the HMAC key of a secret.
func SecretKey(secret string) ([]byte, error) {
	if !strings.HasPrefix(secret, "whsec_") {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errors.New("redisched: a whsec_ secret must be followed by base64")
	}
	return key, nil
}

// SecretProblem is why secret is refused as a signing secret, or "": the rule and words of
// Python's topic_config.secret_problem. It must sign (a "whsec_" secret followed by base64) with
// a key of at least MinSecretKeyBytes bytes.
func SecretProblem(secret string) string {
	if !utf8.ValidString(secret) {
		return "must be valid UTF-8"
	}
	key, err := SecretKey(secret)
	if err != nil || len(key) == 0 {
		return "must be whsec_ followed by base64 (Standard Webhooks), or not start with whsec_"
	}
	if len(key) < MinSecretKeyBytes {
		n := MinSecretKeyBytes
		return fmt.Sprintf("must give a key of at least %d bytes (whsec_ and the base64 of %d bytes or more, "+
			"or %d+ UTF-8 bytes)", n, n, n)
	}
	return ""
}

// Signature is one "v1,<base64>" signature of a message under one key.
func Signature(key []byte, msgID string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + strconv.FormatInt(timestamp, 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignHeaders are the Standard Webhooks headers of a request (no signature without keys).
func SignHeaders(msgID string, body []byte, keys [][]byte, timestamp int64) map[string]string {
	if timestamp == 0 {
		timestamp = time.Now().Unix()
	}
	headers := map[string]string{"webhook-id": msgID, "webhook-timestamp": strconv.FormatInt(timestamp, 10)}
	if len(keys) > 0 {
		var sigs []string
		for _, k := range keys {
			sigs = append(sigs, Signature(k, msgID, timestamp, body))
		}
		headers["webhook-signature"] = strings.Join(sigs, " ")
	}
	return headers
}

// MessageID is the webhook-id: the same for every attempt of one job version.
func MessageID(job *Job) string {
	sum := sha256.Sum256([]byte(job.Topic + "\x00" + job.ID + "\x00" + strconv.FormatInt(job.Version, 10)))
	return "msg_" + hex.EncodeToString(sum[:])[:32]
}
