package redisched

// A small HTTP server with the original project's routes:
//
//	POST /schedule/{topic}  {"id", "contents", "delay"}  create or replace job id, due after delay
//	                        seconds; 201 created, 200 replaced, 202 pending, with
//	                        {"topic", "id", "version", "status"}
//	POST /cancel/{topic}    {"id"}  delete it; 200 {"id", "cancelled": true}, or 404
//	GET  /healthz           200 {"status": "ok", "redis": "ok"}, 503 when Redis does not answer
//
// contents follows the body convention of the Python service (body.go). Errors are JSON
// {"error": {"code", "message", "field"}} and change nothing stored. With tokens, every route but
// /healthz answers 401 (field "Authorization", WWW-Authenticate: Bearer realm="redisched") unless
// the request sends "Authorization: Bearer <one of the tokens>" (auth.go). Before that, as the
// Python service does (sameorigin.go): a Host that is not an IP address, localhost or an allowed
// host is 400 bad_host (DNS rebinding), and a POST with a foreign Origin or with
// "Sec-Fetch-Site: cross-site" is 403 cross_site.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// as the Python service's max_request_size: larger than the largest body (the client's
	// MaxBodySize, 1 MiB by default), which {"$base64": ...} makes a third longer again
	maxRequestBytes = 4 << 20
	maxIDBytes      = 1024
	maxDelaySeconds = 100 * 365 * 86400
)

type apiError struct {
	status               int
	code, message, field string
}

func (e *apiError) Error() string { return e.message }

func invalid(field, message string) *apiError {
	return &apiError{400, "invalid", field + " " + message, field}
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	data, _ := json.Marshal(value)
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	w.Write(data) //nolint:errcheck // the client went away
}

func writeError(w http.ResponseWriter, err error) {
	var e *apiError
	var bad *InvalidArgument
	switch {
	case errors.As(err, &e):
	case errors.As(err, &bad): // the client's own checks (Put, Delete)
		e = invalid(bad.Field, bad.Message)
	default:
		e = &apiError{503, "backend_unavailable", err.Error(), ""}
	}
	var field any
	if e.field != "" {
		field = e.field
	}
	writeJSON(w, e.status, map[string]any{"error": map[string]any{"code": e.code, "message": e.message, "field": field}})
}

// readJSON decodes a request body, a JSON object and nothing after it, into dst (a pointer to a
// struct), as the Node server reads it: a field name dst does not spell exactly (case
// included) is refused; errors name the field. What Python refuses and Go's decoder reads
// otherwise (jsonFaults) is refused as Python refuses it; but a key given twice is returned as
// repeated, to refuse once the fields are checked (Python checks it after decoding). free is
// the field of dst holding free JSON, named when the request is too deep.
func readJSON(r *http.Request, dst any, free string) (repeated, err error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		return nil, &apiError{400, "malformed_json", "the request body could not be read", ""}
	}
	if len(data) > maxRequestBytes {
		return nil, &apiError{413, "payload_too_large", fmt.Sprintf("the request body is over %d bytes", maxRequestBytes), ""}
	}
	if tooDeep(data, maxDepth+1) { // the request object is one level around the body
		return nil, &apiError{400, "too_deep", fmt.Sprintf("the JSON is nested deeper than %d levels", maxDepth), free}
	}
	if !utf8.Valid(data) { // Go's decoder would take each bad byte as U+FFFD
		return nil, &apiError{400, "malformed_json", "the request body is not valid JSON: it is not valid UTF-8", ""}
	}
	object, err := jsonObject(data)
	if err != nil {
		return nil, err
	}
	known := jsonFields(dst)
	fault, twice := jsonFaults(data, free, known)
	if fault != nil {
		return nil, fault
	}
	if twice != nil {
		repeated = twice
	}
	for _, name := range object {
		if !known[name] {
			return nil, invalid(name, "is not a known field")
		}
	}
	err = json.Unmarshal(data, dst)
	var typeErr *json.UnmarshalTypeError
	var apiErr *apiError
	switch {
	case err == nil:
		return repeated, nil
	case errors.As(err, &apiErr):
		return nil, apiErr
	case errors.As(err, &typeErr):
		return nil, invalid(typeErr.Field, "must be a "+typeErr.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return nil, invalid(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "is not a known field")
	default:
		return nil, &apiError{400, "malformed_json", "the request body is not valid JSON: " + err.Error(), ""}
	}
}

// jsonObject checks that data is one JSON object with nothing after it; its member names in
// the order written.
func jsonObject(data []byte) ([]string, error) {
	malformed := func(err error) error {
		return &apiError{400, "malformed_json", "the request body is not valid JSON: " + err.Error(), ""}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var whole json.RawMessage
	if err := dec.Decode(&whole); err != nil {
		return nil, malformed(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed(errors.New("data after the JSON value"))
	}
	if whole[0] != '{' {
		return nil, &apiError{400, "invalid", "the request body must be a JSON object", ""}
	}
	dec = json.NewDecoder(bytes.NewReader(whole))
	dec.Token() //nolint:errcheck // the '{' just seen
	var names []string
	for dec.More() {
		name, _ := dec.Token() // a valid object: a member name, then its value
		names = append(names, name.(string))
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, malformed(err)
		}
	}
	return names, nil
}

// jsonFields are the JSON names of the fields of the struct dst points to.
func jsonFields(dst any) map[string]bool {
	t := reflect.TypeOf(dst).Elem()
	names := make(map[string]bool, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

func checkID(id *jsonID) error {
	if id == nil {
		return invalid("id", "is required")
	}
	if *id == "" || len(*id) > maxIDBytes {
		return invalid("id", fmt.Sprintf("must be a string of 1 to %d bytes", maxIDBytes))
	}
	return nil
}

// jsonID is a request's id: a JSON string without a lone surrogate escape ("\ud800"), which
// Go's decoder would turn into U+FFFD, storing the job under another id than the one sent (the
// Python and Node services refuse it).
type jsonID string

func (id *jsonID) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return invalid("id", "must be a string")
	}
	if hasLoneSurrogate(data) {
		return invalid("id", "must be valid Unicode (no lone surrogates)")
	}
	*id = jsonID(s)
	return nil
}

// hasLoneSurrogate reports whether the JSON string token data holds a \u escape of a UTF-16
// surrogate that is not half of a pair.
func hasLoneSurrogate(data []byte) bool {
	escape := func(i int) (rune, bool) { // the \uXXXX at data[i:], if there is one
		if i+6 > len(data) || data[i] != '\\' || data[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
		return rune(v), err == nil
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		r, ok := escape(i)
		if !ok {
			i++ // a two-byte escape such as \\ or \"
			continue
		}
		switch {
		case r >= 0xDC00 && r < 0xE000:
			return true
		case r >= 0xD800 && r < 0xDC00:
			low, ok := escape(i + 6)
			if !ok || low < 0xDC00 || low >= 0xE000 {
				return true
			}
			i += 6
		}
		i += 5
	}
	return false
}

type scheduleRequest struct {
	ID       *jsonID         `json:"id"`
	Contents json.RawMessage `json:"contents"`
	Delay    *float64        `json:"delay"`
}

type cancelRequest struct {
	ID *jsonID `json:"id"`
}

var putStatus = map[string]int{"created": 201, "replaced": 200, "pending": 202}

// ServerOptions of NewServer.
type ServerOptions struct {
	// Tokens are the API tokens, each MinTokenLength to 4096 printable characters: when any is
	// given, every route but /healthz needs "Authorization: Bearer <one of them>" (401 without).
	// None serves anyone who can connect: listen on a loopback address only.
	Tokens []string
	// AllowedHosts are the host names answered besides IP addresses and localhost (give the
	// listen host if it is a name): a request for any other Host is 400 bad_host (DNS rebinding).
	// "*" answers any.
	AllowedHosts []string
}

// NewServer answers the routes above through c, behind opts.Tokens if any. A refused token is an
// *InvalidArgument naming it ("tokens[i]").
func NewServer(c *Client, opts ServerOptions) (http.Handler, error) {
	if field, problem := TokensProblem(opts.Tokens); problem != "" {
		return nil, &InvalidArgument{field, problem}
	}
	mux := http.NewServeMux()
	route := func(prefix string, serve func(ctx context.Context, topic string, r *http.Request) (int, any, error)) {
		mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
			raw := strings.TrimPrefix(r.URL.EscapedPath(), prefix)
			if raw == "" || strings.Contains(raw, "/") {
				writeError(w, &apiError{404, "not_found", "no route " + r.URL.Path, ""})
				return
			}
			if r.Method != http.MethodPost {
				writeError(w, &apiError{405, "method_not_allowed", r.Method + " is not allowed here", ""})
				return
			}
			topic, err := url.PathUnescape(raw)
			if err == nil {
				err = checkTopic(topic)
			}
			if err != nil {
				writeError(w, invalid("topic", "must be 1 to 200 characters without braces or control characters"))
				return
			}
			status, body, err := serve(r.Context(), topic, r)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, status, body)
		})
	}
	route("/schedule/", func(ctx context.Context, topic string, r *http.Request) (int, any, error) {
		var req scheduleRequest
		repeated, err := readJSON(r, &req, "contents")
		if err != nil {
			return 0, nil, err
		}
		if err := checkID(req.ID); err != nil {
			return 0, nil, err
		}
		if req.Contents == nil {
			return 0, nil, invalid("contents", "is required")
		}
		delay := 0.0
		if req.Delay != nil {
			delay = *req.Delay
		}
		if delay < 0 || delay > maxDelaySeconds {
			return 0, nil, invalid("delay", fmt.Sprintf("must be a number of seconds from 0 to %d", maxDelaySeconds))
		}
		if repeated != nil {
			return 0, nil, repeated
		}
		data, err := ToStored(req.Contents)
		if err != nil {
			field := "contents"
			if _, isMarker := markerText(req.Contents); isMarker {
				field += "." + bodyMarker
			}
			return 0, nil, invalid(field, err.Error())
		}
		if limit := c.maxBodySize(); len(data) > limit {
			return 0, nil, &apiError{413, "payload_too_large",
				fmt.Sprintf("the body is %d bytes; the limit is %d", len(data), limit), "contents"}
		}
		status, version, err := c.Put(ctx, topic, string(*req.ID), data,
			PutOptions{DelayMs: int64(math.Round(delay * 1000)), Replace: true})
		if err != nil {
			return 0, nil, err
		}
		return putStatus[status], map[string]any{"topic": topic, "id": *req.ID, "version": version, "status": status}, nil
	})
	route("/cancel/", func(ctx context.Context, topic string, r *http.Request) (int, any, error) {
		var req cancelRequest
		repeated, err := readJSON(r, &req, "")
		if err != nil {
			return 0, nil, err
		}
		if err := checkID(req.ID); err != nil {
			return 0, nil, err
		}
		if repeated != nil {
			return 0, nil, repeated
		}
		existed, err := c.Delete(ctx, topic, string(*req.ID), 0)
		if err != nil {
			return 0, nil, err
		}
		if !existed {
			return 0, nil, &apiError{404, "not_found", fmt.Sprintf("no job %q in topic %q", *req.ID, topic), "id"}
		}
		return 200, map[string]any{"id": *req.ID, "cancelled": true}, nil
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeError(w, &apiError{405, "method_not_allowed", r.Method + " is not allowed here", ""})
			return
		}
		if _, err := c.doPlain(r.Context(), "EXISTS", c.Prefix+":topics"); err != nil {
			writeJSON(w, 503, map[string]string{"status": "unavailable", "redis": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]string{"status": "ok", "redis": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{404, "not_found", "no route " + r.URL.Path, ""})
	})
	return withSameOrigin(withTokens(mux, opts.Tokens), opts.AllowedHosts), nil
}
