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
	if !utf8.Valid(value) { // msgspec refuses it; Go's decoder would read each bad byte as U+FFFD
		return nil, errors.New("is not valid UTF-8")
	}
	if !json.Valid(value) {
		return nil, errors.New("is not valid JSON")
	}
	return storedJSON(value)
}

// stringEnd is the index of the quote that ends the JSON string starting at data[start] (valid
// JSON: the string ends).
func stringEnd(data []byte, start int) int {
	end := start + 1
	for data[end] != '"' {
		if data[end] == '\\' {
			end++
		}
		end++
	}
	return end
}

// numberEnd is the index just past the JSON number starting at data[start].
func numberEnd(data []byte, start int) int {
	end := start + 1
	for end < len(data) && strings.IndexByte("0123456789+-.eE", data[end]) >= 0 {
		end++
	}
	return end
}

// storedJSON is the JSON text data as the Python service stores the value msgspec reads from it
// (json_body.to_stored): compact, members in the order sent, an integer's digits exactly (-0 as
// 0), a number with a fraction or an exponent as the float msgspec writes (pyFloat), a string
// with an escape as msgspec escapes it (json.Compact kept 1e5, -0 and "\u00e9" as sent). data
// must be valid JSON; a number out of range or a lone surrogate escape is refused, as msgspec
// refuses them.
func storedJSON(data []byte) ([]byte, error) {
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			end := stringEnd(data, i)
			raw := data[i : end+1]
			i = end + 1
			if bytes.IndexByte(raw, '\\') < 0 {
				out = append(out, raw...) // nothing msgspec would write otherwise
				continue
			}
			if hasLoneSurrogate(raw) {
				return nil, errors.New("must be valid Unicode (no lone surrogates)")
			}
			out = appendPyString(out, jsonString(raw))
		case c == '-' || (c >= '0' && c <= '9'):
			end := numberEnd(data, i)
			number := string(data[i:end])
			i = end
			switch {
			case strings.ContainsAny(number, ".eE"):
				f, _ := strconv.ParseFloat(number, 64) // 1e-400 is 0, with no error
				if math.IsInf(f, 0) {
					return nil, errors.New("Number out of range")
				}
				out = append(out, pyFloat(f)...)
			case number == "-0":
				out = append(out, '0')
			case len(number) > maxIntChars:
				return nil, errors.New("Integer value out of range")
			default:
				out = append(out, number...)
			}
		default: // a bracket, ':', ',', or a letter of true, false, null
			out = append(out, c)
			i++
		}
	}
	return out, nil
}

// pyFloat is a finite float as msgspec writes it, and so the Python service stores it: the
// shortest digits that read back as f, positional from 1e-5 to below 1e16 (100000.0,
// 0.000025), else as 1.5e22, 1e-7 (no +, no .0); -0.0 keeps its sign.
func pyFloat(f float64) string {
	sign := ""
	if math.Signbit(f) {
		sign, f = "-", -f
	}
	if f == 0 {
		return sign + "0.0"
	}
	text := strconv.FormatFloat(f, 'e', -1, 64) // the shortest digits: 1.5e+22, 1e-07
	at := strings.IndexByte(text, 'e')
	digits := strings.Replace(text[:at], ".", "", 1)
	e, _ := strconv.Atoi(text[at+1:])
	switch {
	case e < -5 || e >= 16:
		if len(digits) > 1 {
			return sign + digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(e)
		}
		return sign + digits + "e" + strconv.Itoa(e)
	case e < 0:
		return sign + "0." + strings.Repeat("0", -e-1) + digits
	case len(digits) <= e+1:
		return sign + digits + strings.Repeat("0", e+1-len(digits)) + ".0"
	default:
		return sign + digits[:e+1] + "." + digits[e+1:]
	}
}

// appendPyString appends s as msgspec writes a string: UTF-8 as it is, with \" \\ \b \t \n \f
// \r and \u00XX (lower case) for the other control characters; no other escape (Go's
// json.Marshal also escapes <, >, & and U+2028).
func appendPyString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c >= 0x20:
			out = append(out, c)
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c == '\r':
			out = append(out, '\\', 'r')
		default:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return append(out, '"')
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
			end := stringEnd(data, i)
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
			end := numberEnd(data, i)
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
