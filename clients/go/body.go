package redisched

// How job bodies (bytes) travel as JSON, as src/redisched/json_body.py does it: a JSON value is
// stored as its compact encoding; stored bytes that are a JSON text read back as that value;
// other bytes read back as {"$base64": "..."}, and writers accept that marker.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

const bodyMarker = "$base64"

func markerText(raw []byte) (json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) && json.Unmarshal(raw, &obj) == nil && len(obj) == 1 {
		text, ok := obj[bodyMarker]
		return text, ok
	}
	return nil, false
}

// ToStored is the bytes to store for a JSON body value (decoding a $base64 marker).
func ToStored(value json.RawMessage) ([]byte, error) {
	if text, ok := markerText(value); ok {
		var s string
		// null decodes into a string without an error, leaving "": the body would be wiped
		if !bytes.HasPrefix(bytes.TrimSpace(text), []byte(`"`)) || json.Unmarshal(text, &s) != nil {
			return nil, errors.New("must be a base64 string")
		}
		data, err := base64.StdEncoding.DecodeString(s)
		// the decoder skips line breaks, which Python's b64decode(validate=True) refuses
		if err != nil || strings.ContainsAny(s, "\r\n") {
			return nil, errors.New("is not valid base64")
		}
		return data, nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, value); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ToJSON is the JSON text of stored bytes: the bytes themselves when they are JSON, else a marker.
func ToJSON(data []byte) json.RawMessage {
	if utf8.Valid(data) && json.Valid(data) {
		if _, isMarker := markerText(data); !isMarker {
			return data
		}
	}
	wrapped, _ := json.Marshal(map[string]string{bodyMarker: base64.StdEncoding.EncodeToString(data)})
	return wrapped
}
