package redisched

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// POST /schedule and /cancel refuse what the Python service refuses in the request's JSON (its
// http/reading.py), with its status, code and field: a key given twice, nesting deeper than 512
// levels, a number out of range, a lone surrogate escape. Go's decoder read each as another
// value (the last key, 1e400 kept as text Python reads as a string, U+FFFD), and the job was
// stored.

func nestedJSON(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }

func twice(key string) string { return fmt.Sprintf("the JSON object has the key %s twice", key) }

const (
	loneSurrogate = "must be valid Unicode (no lone surrogates)"
	tooDeepJSON   = "the JSON is nested deeper than 512 levels"
)

// refusedJSON, each as the Python service answers it: request, code, field, message.
var refusedJSON = [][4]string{
	{`{"id":"j","contents":{"k":1,"k":2}}`, "invalid", "contents.k", twice("'k'")},
	{`{"id":"a2","id":"j","contents":1}`, "invalid", "id", twice("'id'")},
	{`{"id":"j","contents":{"a":1,"a":2},"contents":3}`, "invalid", "contents", twice("'contents'")},
	{`{"id":"j","contents":[{"a":{"b":1,"c":{"d":1,"d":2}}}]}`, "invalid", "contents[0].a.c.d", twice("'d'")},
	{`{"id":"j","contents":{"a":1,"b":1,"b":2,"a":2}}`, "invalid", "contents.b", twice("'b'")},
	{`{"id":"j","contents":[{"a":{"c":1,"c":1}},{"b":1,"b":2}]}`, "invalid", "contents[0].a.c", twice("'c'")},
	{`{"id":"j","contents":{"a":{"c":1,"c":1},"a":2}}`, "invalid", "contents.a", twice("'a'")},
	{`{"id":"j","contents":[{}, "x", {"a":[],"\u0061":1}]}`, "invalid", "contents[2].a", twice("'a'")},
	{`{"id":"j","contents":{"a.b":{"it's":1,"it's":2}}}`, "invalid", `contents["a.b"].it's`, twice(`"it's"`)},
	{`{"id":"j","contents":{"\u00e9 x\u0007":{"z":1,"z":2}}}`, "invalid", `contents["\u00e9 x\u0007"].z`, twice("'z'")},
	{`{"id":"j","contents":{"\u2028":1,"\u2028":2}}`, "invalid", `contents["\u2028"]`, twice(`'\u2028'`)},
	{`{"id":"j","contents":` + nestedJSON(513) + `}`, "too_deep", "contents", tooDeepJSON},
	{`{"id":"j","contents":` + nestedJSON(513)[:513] + `}`, "too_deep", "contents", tooDeepJSON}, // deep before malformed
	{`{"id":"j","delay":` + nestedJSON(600) + `,"contents":1}`, "too_deep", "contents", tooDeepJSON},
	{`{"id":"j","contents":1e400}`, "invalid", "contents", "Number out of range"},
	{`{"id":"j","contents":-1e400}`, "invalid", "contents", "Number out of range"},
	{`{"id":"j","contents":1.7976931348623159e308}`, "invalid", "contents", "Number out of range"},
	{`{"id":"j","contents":{"a.b":[0, 1e400]}}`, "invalid", "contents[...][1]", "Number out of range"},
	{`{"id":"j","delay":1e400,"contents":1}`, "invalid", "delay", "Number out of range"},
	{`{"id":"j","contents":[1` + strings.Repeat("0", 4300) + `]}`, "invalid", "contents[0]", "Integer value out of range"},
	{`{"id":"j","contents":"\ud800"}`, "invalid", "contents", loneSurrogate},
	{`{"id":"j","contents":{"x":["ok","\udc00"]}}`, "invalid", "contents.x[1]", loneSurrogate},
	{`{"id":"j","contents":{"\ud800":1}}`, "invalid", `contents["\ud800"]`, loneSurrogate},
	{`{"id":"j","contents":["\ud800",1e400]}`, "invalid", "contents[0]", loneSurrogate}, // the first in the text
	{`{"id":"j","contents":[1e400,"\ud800"]}`, "invalid", "contents[0]", "Number out of range"},
	{`{"id":"j","contents":["\udc00","` + strings.Repeat("a", 300_000) + `"]}`, "invalid", "contents", loneSurrogate}, // too long to locate
	{`{"id":"j","contents":[{"k":1,"k":2}],"delay":0}` + strings.Repeat(" ", 300_000), "invalid", "contents", twice("'k'")},
}

func TestServerRefusesJSONAsPython(t *testing.T) {
	c, topic := testClient(t, "go-json-")
	ctx := context.Background()
	if _, _, err := c.Put(ctx, topic, "j", []byte("kept"), PutOptions{DelayMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, c, ServerOptions{})
	check := func(path, body, code, field, message string) {
		t.Helper()
		status, got := sendWith(t, srv, "POST", path, nil, body)
		var wantField any
		if field != "" {
			wantField = field
		}
		e, _ := got["error"].(map[string]any)
		if status != 400 || e["code"] != code || e["field"] != wantField || e["message"] != message {
			t.Errorf("%.80s: %d %v, want 400 %s %v %q", body, status, got, code, wantField, message)
		}
	}
	for _, r := range refusedJSON {
		check("/schedule/"+topic, r[0], r[1], r[2], r[3])
	}
	// /cancel has no free field: too deep JSON names none
	check("/cancel/"+topic, `{"id":"j","id":"j"}`, "invalid", "id", twice("'id'"))
	check("/cancel/"+topic, `{"id":"j","x":`+nestedJSON(513)+`}`, "too_deep", "", tooDeepJSON)
	if job, err := c.Get(ctx, topic, "j"); err != nil || job == nil || string(job.Body) != "kept" {
		t.Errorf("the job after refused requests: %+v %v", job, err)
	}
	if job, err := c.Get(ctx, topic, "a2"); err != nil || job != nil {
		t.Errorf("a job stored from a refused request: %+v %v", job, err)
	}
}

// TestServerStoresWhatPythonAccepts: 512 levels, a key in two objects, a tiny or the largest
// number, a surrogate pair are stored, as the Python service stores them (1e-400 as 0.0, the
// pair as its UTF-8); a request's floats and -0 as msgspec writes them (they were kept as sent).
func TestServerStoresWhatPythonAccepts(t *testing.T) {
	c, topic := testClient(t, "go-json-")
	ctx := context.Background()
	srv := testServer(t, c, ServerOptions{})
	big := "1" + strings.Repeat("0", 4299)
	for _, contents := range [][2]string{{nestedJSON(512), nestedJSON(512)},
		{`[{"k":1},{"k":2,"v":{"k":3}}]`, `[{"k":1},{"k":2,"v":{"k":3}}]`},
		{`[1e-400,1.7976931348623157e308,"\ud83d\ude00","[{\"a\":1,\"a\":2}]",` + big + `]`,
			`[0.0,1.7976931348623157e308,"😀","[{\"a\":1,\"a\":2}]",` + big + `]`},
		{`{"order": 12345678901234567890123, "b": 1, "1": [-0, 1e5, 1.0, -0.0, 1E22, 2.5e-5, 1e-7]}`,
			`{"order":12345678901234567890123,"b":1,"1":[0,100000.0,1.0,-0.0,1e22,0.000025,1e-7]}`}} {
		status, got := sendWith(t, srv, "POST", "/schedule/"+topic, nil, `{"id": "j", "contents": `+contents[0]+`, "delay": 1e1}`)
		if status != 200 && status != 201 {
			t.Errorf("%.80s: %d %v", contents[0], status, got)
		}
		if job, err := c.Get(ctx, topic, "j"); err != nil || job == nil || string(job.Body) != contents[1] {
			t.Errorf("%.80s: stored %+v %v, want %.80s", contents[0], job, err, contents[1])
		}
	}
}
