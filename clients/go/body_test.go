package redisched

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// TestToStoredRefusesWhatPythonRefuses: a $base64 marker that is not a string (null decoded
// into "" and wiped the body) or whose text has a line break (skipped by Go's decoder) is
// refused in Python's words.
func TestToStoredRefusesWhatPythonRefuses(t *testing.T) {
	for raw, want := range map[string]string{
		`{"$base64": null}`:       "must be a base64 string",
		`{"$base64":null}`:        "must be a base64 string",
		`{"$base64": 12}`:         "must be a base64 string",
		`{"$base64": ["AA=="]}`:   "must be a base64 string",
		`{"$base64": "/w==\n"}`:   "is not valid base64",
		`{"$base64": "/w\r\n=="}`: "is not valid base64",
		`{"$base64": "/w="}`:      "is not valid base64",
	} {
		if _, err := ToStored(json.RawMessage(raw)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
	for raw, want := range map[string][]byte{`{"$base64": "/w=="}`: {0xff}, `{"$base64": ""}`: {}} {
		if got, err := ToStored(json.RawMessage(raw)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", raw, got, err, want)
		}
	}
}

// TestServerKeepsTheBodyOnANullMarker: POST /schedule replaces a job, so a marker accepted as
// the empty body would wipe it; it is a 400 naming contents.$base64 and the body is kept.
func TestServerKeepsTheBodyOnANullMarker(t *testing.T) {
	c, topic := testClient(t, "go-body-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "j", []byte("kept"), PutOptions{DelayMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, c, ServerOptions{})
	for _, body := range []string{`{"id":"j","contents":{"$base64":null}}`, `{"id":"j","contents":{"$base64":"/w==\n"}}`} {
		status, got := sendWith(t, srv, "POST", "/schedule/"+topic, nil, body)
		e, _ := got["error"].(map[string]any)
		if status != 400 || e["field"] != "contents.$base64" {
			t.Errorf("%s: %d %v", body, status, got)
		}
	}
	if job, err := c.Get(ctx, topic, "j"); err != nil || job == nil || string(job.Body) != "kept" {
		t.Errorf("the job after refused requests: %+v %v", job, err)
	}
}
