package redisched

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
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

// storedContents are [sent, as the Python service stores it]: to_stored(msgspec.json.decode(sent))
// in json_body.py, each checked against msgspec 0.23.
var storedContents = [][2]string{
	{"12345678901234567890123", "12345678901234567890123"},
	{"-12345678901234567890123", "-12345678901234567890123"},
	{"9007199254740993", "9007199254740993"},
	{"1" + strings.Repeat("0", 4299), "1" + strings.Repeat("0", 4299)},
	{"-0", "0"},
	{"[0, -0, 1, -1]", "[0,0,1,-1]"},
	{"1e5", "100000.0"},
	{"1E+2", "100.0"},
	{"1.0", "1.0"},
	{"1.50", "1.5"},
	{"-0.0", "-0.0"},
	{"0e0", "0.0"},
	{"1e-400", "0.0"},
	{"-1e-400", "-0.0"},
	{"1.7976931348623157e308", "1.7976931348623157e308"},
	{"5e-324", "5e-324"},
	{"1e15", "1000000000000000.0"},
	{"1e16", "1e16"},
	{"9999999999999998.0", "9999999999999998.0"},
	{"1E22", "1e22"},
	{"0.00001", "0.00001"},
	{"2.5e-5", "0.000025"},
	{"0.000001", "1e-6"},
	{"1e-6", "1e-6"},
	{"-1e-6", "-1e-6"},
	{"1e-7", "1e-7"},
	{"12345678901234567890123e0", "1.2345678901234568e22"},
	{"123456789012345678901234567890.5", "1.2345678901234568e29"},
	{"1.2345678901234567890123", "1.2345678901234567"},
	{"0.1", "0.1"},
	{"-123.456e-2", "-1.23456"},
	{`{"b":1,"1":2,"0":[],"a":{"2":null,"x":true}}`, `{"b":1,"1":2,"0":[],"a":{"2":null,"x":true}}`},
	{" { \"a\" : [ 1 , 2 ] ,\n\t\"b\" : false } ", `{"a":[1,2],"b":false}`},
	{`"\u00e9\/\u001F\"\\ \ud83d\ude00 \u2028 \u003c\u0026"`, "\"é/\\u001f\\\"\\\\ 😀 \u2028 <&\""},
	{`{"\u0031":1, "k\n": "v"}`, `{"1":1,"k\n":"v"}`},
	{`"1e5 12345678901234567890123 {\"1\":2}"`, `"1e5 12345678901234567890123 {\"1\":2}"`},
}

// TestToStoredWritesWhatPythonStores: integers exactly, floats and -0 as msgspec writes them
// (json.Compact kept 1e5 and -0 as sent), keys in order, strings re-escaped as msgspec does.
func TestToStoredWritesWhatPythonStores(t *testing.T) {
	for _, c := range storedContents {
		if got, err := ToStored(json.RawMessage(c[0])); err != nil || string(got) != c[1] {
			t.Errorf("%.40s: %s %v, want %s", c[0], got, err, c[1])
		}
	}
	// what msgspec refuses (the server refuses it first, in Python's words)
	for _, raw := range []string{"1e400", "[-1e400]", "1" + strings.Repeat("0", 4300), `"\ud800"`, "\"\xff\"", "[1,"} {
		if got, err := ToStored(json.RawMessage(raw)); err == nil {
			t.Errorf("%.40s: stored %s", raw, got)
		}
	}
}
