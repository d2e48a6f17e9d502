package redisched

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf16"
)

// ResultLimit is how many bytes of a result ack.lua keeps; it cuts a longer one and says so in
// the acked event.
const ResultLimit = 64 * 1024

// EncodeResult is a job's result as stored, as in the Python client (src/redisched/results.py):
// []byte and string as they are, nil as none, anything else as compact JSON with non-ASCII
// escaped (Python's json.dumps output; Go sorts map keys). An *InvalidArgument when
// encoding/json cannot encode the value.
func EncodeResult(value any) ([]byte, error) {
	switch v := value.(type) {
	case nil:
		return []byte{}, nil
	case []byte:
		return v, nil
	case json.RawMessage:
		return v, nil
	case string:
		return []byte(v), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(value); err != nil {
		return nil, invalidArg("result", "must be []byte, a string or JSON-encodable: %v", err)
	}
	return asciiJSON(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// asciiJSON escapes every character from U+007F up as \uXXXX (a surrogate pair above U+FFFF).
func asciiJSON(text []byte) []byte {
	out := make([]byte, 0, len(text))
	for _, r := range string(text) {
		switch {
		case r < 0x7f:
			out = append(out, byte(r))
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			out = append(out, fmt.Sprintf(`\u%04x\u%04x`, hi, lo)...)
		default:
			out = append(out, fmt.Sprintf(`\u%04x`, r)...)
		}
	}
	return out
}
