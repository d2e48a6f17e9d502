package redisched

// How job bodies (bytes) travel as JSON, as src/redisched/json_body.py does it: a JSON value is
// stored as its compact encoding; stored bytes that are a JSON text read back as that value;
// other bytes read back as {"$base64": "..."}, and writers accept that marker.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

const (
	bodyMarker = "$base64"
	// maxDepth is the deepest JSON nesting read as JSON (json_body.MAX_DEPTH: writers refuse deeper)
	maxDepth = 512
	// json_keys.PATH_SEARCH_BYTES: a larger request's fault is named by its free field, not its path
	pathSearchBytes = 256 << 10
	// msgspec reads an integer of more characters (sign included) as out of range
	maxIntChars = 4300
)

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

// tooDeep reports whether the JSON text data nests arrays/objects deeper than limit, counted as
// json_body.too_deep counts: brackets outside strings, none after an unterminated string.
func tooDeep(data []byte, limit int) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"': // a string: to its closing quote, each escape's character skipped
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			if depth++; depth > limit {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

// jsonLevel is an array or object open in jsonFaults' pass, and where in it the pass is.
type jsonLevel struct {
	keys   map[string]bool // an object's keys so far; nil for an array
	index  int             // an array's current item
	key    string          // an object's current member: its key, and that key's JSON text
	rawKey []byte
	order  int    // an object's place among the objects, in document order
	repeat string // the first key it gives twice, if any
	path   string // that key's field path
}

// jsonFaults is what the Python service refuses in a request object that Go's decoder accepts
// (its http/reading.py): fault, the first number out of range or string with a lone surrogate
// escape in document order (msgspec refuses them while decoding: Go kept 1e400 as text, and
// read "\ud800" as U+FFFD), and repeated, a key given twice in an object (Go keeps the last:
// json_keys.repeated_key); each nil if none.
//
// data is the request, a JSON object; free the field holding free JSON ("contents"), named instead
// of a path in a request over pathSearchBytes; known its field names: the pass stops at any
// other (refused as such, as Python refuses it there). A key given twice in the request itself
// is named as itself, else the first object (in document order) that repeats one, by its path.
func jsonFaults(data []byte, free string, known map[string]bool) (fault, repeated *apiError) {
	large := len(data) > pathSearchBytes
	var stack []*jsonLevel
	objects := 0
	var first, closed *jsonLevel // the first object (in document order) that repeats a key; the first such to end
	key := false                 // the next string is an object's key
	i := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == '"':
			end := i + 1
			for data[end] != '"' {
				if data[end] == '\\' {
					end++
				}
				end++
			}
			raw := data[i : end+1]
			i = end + 1
			level := stack[len(stack)-1]
			if key {
				level.rawKey = raw // a key's path is its value's
			}
			if bytes.IndexByte(raw, '\\') >= 0 && hasLoneSurrogate(raw) {
				field := free
				if !large {
					field = fieldPath(stack)
				}
				return &apiError{400, "invalid", "must be valid Unicode (no lone surrogates)", field}, nil
			}
			if !key {
				continue
			}
			key = false
			level.key = jsonString(raw)
			if len(stack) == 1 && known != nil && !known[level.key] {
				return nil, nil // refused as unknown
			}
			if !level.keys[level.key] {
				level.keys[level.key] = true
			} else if level.repeat == "" && level.path == "" {
				level.repeat, level.path = level.key, fieldPath(stack)
				if first == nil || level.order < first.order {
					first = level
				}
			}
		case c == '{' || c == '[':
			level := &jsonLevel{}
			if c == '{' {
				level.keys, level.order = map[string]bool{}, objects
				objects++
			}
			stack = append(stack, level)
			key = c == '{'
			i++
		case c == '}' || c == ']':
			level := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if level.path != "" && closed == nil {
				closed = level
			}
			key = false
			i++
		case c == ',':
			if level := stack[len(stack)-1]; level.keys != nil {
				key = true
			} else {
				level.index++
			}
			i++
		case c == '-' || (c >= '0' && c <= '9'):
			end := i + 1
			for end < len(data) && strings.IndexByte("0123456789+-.eE", data[end]) >= 0 {
				end++
			}
			number := string(data[i:end])
			i = end
			problem := ""
			if strings.ContainsAny(number, ".eE") {
				if f, _ := strconv.ParseFloat(number, 64); math.IsInf(f, 0) {
					problem = "Number out of range"
				}
			} else if len(number) > maxIntChars {
				problem = "Integer value out of range"
			}
			if problem != "" {
				return &apiError{400, "invalid", problem, decoderPath(stack)}, nil
			}
		default:
			i++ // ':', white space, or a letter of true, false, null
		}
	}
	if first == nil {
		return nil, nil
	}
	repeat, field := first.repeat, first.path
	switch {
	case first.order == 0: // the request's own field
		field = repeat
	case large:
		repeat, field = closed.repeat, free
	}
	return nil, &apiError{400, "invalid", fmt.Sprintf("the JSON object has the key %s twice", pyRepr(repeat)), field}
}

// jsonString is the text of a JSON string token (valid JSON).
func jsonString(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s) //nolint:errcheck // a valid token
	return s
}

// fieldPath is the field path of the value the pass is at, as the Python service names it
// (json_keys.path): "contents.a[0]", or `contents["a.b"]` for a key that would read as more than
// one step, written as Python's json.dumps writes it.
func fieldPath(stack []*jsonLevel) string {
	var b strings.Builder
	for _, level := range stack {
		if level.keys == nil {
			fmt.Fprintf(&b, "[%d]", level.index)
			continue
		}
		key := jsonString(level.rawKey)
		plain := key != "" && !hasLoneSurrogate(level.rawKey) && strings.IndexFunc(key, func(r rune) bool {
			return strings.ContainsRune(`.[]"\`, r) || !unicode.IsPrint(r)
		}) < 0
		if plain {
			b.WriteString("." + key)
			continue
		}
		b.WriteString(`["`)
		for _, unit := range jsonUnits(level.rawKey) {
			if short, ok := jsonShortEscapes[unit]; ok {
				b.WriteString(short)
			} else if unit >= 0x20 && unit < 0x7f {
				b.WriteByte(byte(unit))
			} else {
				fmt.Fprintf(&b, `\u%04x`, unit)
			}
		}
		b.WriteString(`"]`)
	}
	return strings.TrimPrefix(b.String(), ".")
}

// jsonShortEscapes are the escapes json.dumps writes other than \uXXXX.
var jsonShortEscapes = map[uint16]string{'"': `\"`, '\\': `\\`, '\b': `\b`, '\f': `\f`, '\n': `\n`, '\r': `\r`, '\t': `\t`}

// jsonUnits are the UTF-16 code units of a JSON string token, a lone surrogate escape kept.
func jsonUnits(raw []byte) []uint16 {
	var units []uint16
	text := raw[1 : len(raw)-1]
	for i := 0; i < len(text); {
		if text[i] != '\\' {
			r, size := utf8.DecodeRune(text[i:])
			units = append(units, utf16.Encode([]rune{r})...)
			i += size
			continue
		}
		switch text[i+1] {
		case 'u':
			v, _ := strconv.ParseUint(string(text[i+2:i+6]), 16, 16)
			units = append(units, uint16(v))
			i += 6
			continue
		case 'b':
			units = append(units, '\b')
		case 'f':
			units = append(units, '\f')
		case 'n':
			units = append(units, '\n')
		case 'r':
			units = append(units, '\r')
		case 't':
			units = append(units, '\t')
		default: // \" \\ \/
			units = append(units, uint16(text[i+1]))
		}
		i += 2
	}
	return units
}

// decoderPath is the path of the value the pass is at as msgspec names it in a decoding error:
// the request's field, then "[i]" for an array item and "[...]" for an object member.
func decoderPath(stack []*jsonLevel) string {
	path := jsonString(stack[0].rawKey)
	for _, level := range stack[1:] {
		if level.keys == nil {
			path += fmt.Sprintf("[%d]", level.index)
		} else {
			path += "[...]"
		}
	}
	return path
}
