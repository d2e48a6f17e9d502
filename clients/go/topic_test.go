package redisched

import (
	"strings"
	"testing"
)

// TestValidateTopic checks the Go glue refuses exactly the names keys.topic_problem refuses.
func TestValidateTopic(t *testing.T) {
	cases := map[string]bool{
		"emails":                 true,
		"a/b c:d":                true,
		"ü-ñ-日本":                 true,
		strings.Repeat("é", 200): true, // 200 characters, 400 bytes
		"":                       false,
		strings.Repeat("a", 201): false,
		"a{b":                    false,
		"a}b":                    false,
		"tab\there":              false,
		"nl\n":                   false,
		"del\x7f":                false,
		"nul\x00":                false,
		"bad\xff\xfeutf8":        false,
		string([]byte{0xc3}):     false,
	}
	for name, ok := range cases {
		err := ValidateTopic(name)
		if (err == nil) != ok {
			t.Errorf("ValidateTopic(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	c := &Client{Scripts: map[string]*Script{"get": {}}}
	if _, err := c.Call(nil, "get", "a\x01b", nil); err == nil || !strings.Contains(err.Error(), "control") {
		t.Errorf("Call with a control character: %v", err)
	}
}
