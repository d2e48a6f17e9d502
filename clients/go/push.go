package redisched

// Push delivery: a Worker handler that POSTs each due job to a webhook, as the Python dispatcher
// does (src/redisched/http/delivery.py): {"topic", "id", "body", "attempt", "version", "token",
// "run_at"}, signed the Standard Webhooks way. 2xx acks; 202 leaves the job reserved for the
// receiver to ack or release with the token; 429/503 with Retry-After releases it after that
// delay; anything else, a timeout or a connection error releases it with the topic's backoff.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

type pushPayload struct {
	Topic   string          `json:"topic"`
	ID      string          `json:"id"`
	Body    json.RawMessage `json:"body"`
	Attempt int64           `json:"attempt"`
	Version int64           `json:"version"`
	Token   string          `json:"token"`
	RunAt   string          `json:"run_at"`
}

// Payload is the JSON request body for a reserved job.
func Payload(job *Job) []byte {
	data, _ := json.Marshal(pushPayload{job.Topic, shown(job.ID), ToJSON(job.Body), job.Attempts, job.Version,
		job.Token, time.UnixMilli(job.RunAtMs).UTC().Format("2006-01-02T15:04:05.000Z")})
	return data
}

// RetryAfter is the delay a Retry-After header asks for (seconds or an HTTP date); false if none.
func RetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	when, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	if d := when.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// answerChars is how many characters of a receiver's answer an acked job keeps as its result.
const answerChars = 1024

// DeliveryResult is what an acked delivery keeps as the job's result, byte for byte as
// push/delivery.py: {"status": N, "body": the answer's first 1024 characters}.
func DeliveryResult(status int, answer []byte) []byte {
	runes := []rune(strings.ToValidUTF8(string(answer), "\ufffd"))
	if len(runes) > answerChars {
		runes = runes[:answerChars]
	}
	text, _ := EncodeResult([]string{string(runes)})
	return []byte(fmt.Sprintf(`{"status": %d, "body": %s}`, status, text[1:len(text)-1]))
}

// WebhookHandler delivers each job to target, signed with secrets (up to two during a rotation),
// each request given timeout (0: 10 s). The arguments are checked as the Python service checks a
// topic's webhook, in its words (CheckWebhook): an *InvalidArgument names the first refused
// ("url", "secrets", "secrets[i]" or "timeout").
func WebhookHandler(target string, secrets []string, timeout time.Duration) (Handler, error) {
	if err := CheckWebhook(target, secrets, timeout); err != nil {
		return nil, err
	}
	var keys [][]byte
	for _, s := range secrets {
		key, _ := SecretKey(s)
		keys = append(keys, key)
	}
	if timeout == 0 {
		timeout = defaultWebhookTimeout
	}
	client := &http.Client{Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return Returning(func(ctx context.Context, job *Job) (any, error) {
		data := Payload(job)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		for k, v := range SignHeaders(MessageID(job), data, keys, 0) {
			req.Header.Set(k, v)
		}
		req.Header.Set("content-type", "application/json")
		req.Header.Set("user-agent", "redisched-go-webhook/1")
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: %w", target, err)
		}
		defer res.Body.Close()
		answer, _ := io.ReadAll(io.LimitReader(res.Body, 4*answerChars))
		text := answer
		if len(text) > 300 {
			text = text[:300]
		}
		switch {
		case res.StatusCode == http.StatusAccepted:
			return nil, ErrKeep
		case res.StatusCode >= 200 && res.StatusCode < 300:
			return DeliveryResult(res.StatusCode, answer), nil
		}
		if res.StatusCode == 429 || res.StatusCode == 503 {
			if d, ok := RetryAfter(res.Header.Get("Retry-After"), time.Now()); ok {
				return nil, Retry(d, fmt.Sprintf("webhook answered HTTP %d", res.StatusCode))
			}
		}
		return nil, fmt.Errorf("webhook answered HTTP %d: %s", res.StatusCode, text)
	}), nil
}
