package redisched

// Replays conformance/vectors/*.json against a real redis-server. REDISCHED_TEST_REDIS_URL
// names a server you own (each vector writes under a fresh topic); REDISCHED_LUA_DIR and
// REDISCHED_VECTORS_DIR override where the scripts and the vectors are read.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"testing"

	"github.com/gomodule/redigo/redis"
)

type step struct {
	Note  string            `json:"note"`
	Call  string            `json:"call"`
	Args  map[string]any    `json:"args"`
	Meta  map[string]string `json:"meta"`
	Reply any               `json:"reply"`
}

type vector struct {
	Name  string `json:"name"`
	Steps []step `json:"steps"`
}

func loadVectors(t *testing.T) []vector {
	dir := os.Getenv("REDISCHED_VECTORS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "conformance", "vectors")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no vectors in %s", dir)
	}
	sort.Strings(files)
	var vectors []vector
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		decoder := json.NewDecoder(bytes.NewReader(data))
		decoder.UseNumber()
		var v vector
		if err := decoder.Decode(&v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		vectors = append(vectors, v)
	}
	return vectors
}

// arg turns a JSON value into a script argument (json.Number -> int64, lists kept).
func arg(value any) any {
	switch v := value.(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = arg(item)
		}
		return out
	}
	return value
}

// asJSON turns a redigo reply into the vectors' JSON form.
func asJSON(reply any, err error) any {
	if e, ok := err.(redis.Error); ok {
		return map[string]any{"error": string(e)}
	} else if err != nil {
		return map[string]any{"unexpected error": err.Error()}
	}
	switch v := reply.(type) {
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case []byte:
		return string(v)
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = asJSON(item, nil)
		}
		return out
	}
	return reply
}

func TestHeaders(t *testing.T) {
	scripts, err := LoadScripts("")
	if err != nil {
		t.Fatal(err)
	}
	if got := scripts["touch"].Keys; !reflect.DeepEqual(got, []string{"jobs", "reserved", "meta", "feed"}) {
		t.Fatalf("touch keys: %v", got)
	}
	args, err := BuildArgs(scripts["ack"], Args{"now_ms": 5, "id": []any{"a", "b"}, "token": []any{"1", "2"},
		"result": []any{"", "r"}})
	if err != nil || !reflect.DeepEqual(args, []any{5, "a", "1", "", "b", "2", "r"}) {
		t.Fatalf("ack args: %v %v", args, err)
	}
	if _, err := BuildArgs(scripts["touch"], Args{"now_ms": 1}); err == nil {
		t.Fatal("a missing argument must be an error")
	}
}

func TestVectors(t *testing.T) {
	url := os.Getenv("REDISCHED_TEST_REDIS_URL")
	if url == "" {
		t.Fatal("set REDISCHED_TEST_REDIS_URL to a redis-server you own")
	}
	pool := NewPool(url)
	defer pool.Close()
	client, err := New(pool, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, v := range loadVectors(t) {
		v := v
		t.Run(v.Name, func(t *testing.T) {
			random := make([]byte, 4)
			rand.Read(random)
			topic := "conformance-go-" + v.Name + "-" + hex.EncodeToString(random)
			for i, s := range v.Steps {
				var got any
				if s.Meta != nil {
					args := []any{client.Key(topic, "meta")}
					for field, value := range s.Meta {
						args = append(args, field, value)
					}
					got = asJSON(client.doPlain(ctx, "HSET", args...))
				} else {
					named := Args{}
					for name, value := range s.Args {
						named[name] = arg(value)
					}
					got = asJSON(client.Call(ctx, s.Call, topic, named))
				}
				if !reflect.DeepEqual(got, s.Reply) {
					want, _ := json.Marshal(s.Reply)
					have, _ := json.Marshal(got)
					t.Fatalf("step %d (%s: %s):\nwant %s\ngot  %s", i, s.Call, s.Note, want, have)
				}
			}
		})
	}
}
