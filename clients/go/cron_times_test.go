package redisched

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCronTimeVectors: when a cron schedule fires, as the Python client computes it, and the
// expressions it refuses, for the same reason (conformance/cron_times.json, next to
// $REDISCHED_VECTORS_DIR).
func TestCronTimeVectors(t *testing.T) {
	dir := os.Getenv("REDISCHED_VECTORS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "conformance", "vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "..", "cron_times.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Note, Cron, TZ string
		AfterMs        int64 `json:"after_ms"`
		Count          int
		EndMs          int64 `json:"end_ms"`
		Times          []int64
		Error          string
	}
	if err := json.Unmarshal(data, &cases); err != nil || len(cases) < 10 {
		t.Fatalf("%d cases: %v", len(cases), err)
	}
	for _, c := range cases {
		loc, err := TimeZone(c.TZ)
		if err != nil {
			t.Fatal(err)
		}
		if c.Error != "" {
			if _, err := CronExpression(c.Cron, loc); invalidField(err) != "cron" || !strings.Contains(err.Error(), c.Error) {
				t.Errorf("%q in %s: want an InvalidArgument saying %q, got %v", c.Cron, c.TZ, c.Error, err)
			}
			continue
		}
		expr, err := CronExpression(c.Cron, loc)
		if err != nil {
			t.Fatalf("%s: %v", c.Note, err)
		}
		got := CronTimes(expr, loc, c.AfterMs, c.Count, c.EndMs)
		if len(got) == 0 && len(c.Times) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.Times) {
			t.Errorf("%s (%s in %s): %v, not %v", c.Note, c.Cron, c.TZ, got, c.Times)
		}
	}
}

// TestTimeZoneVectors: the zone names a new schedule takes, as the Python client takes them (any
// glue may refill a schedule's cron times): conformance/time_zones.json.
func TestTimeZoneVectors(t *testing.T) {
	dir := os.Getenv("REDISCHED_VECTORS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "conformance", "vectors")
	}
	data, err := os.ReadFile(filepath.Join(dir, "..", "time_zones.json"))
	if err != nil {
		t.Fatal(err)
	}
	var zones struct{ Accepted, Refused []string }
	if err := json.Unmarshal(data, &zones); err != nil || len(zones.Accepted) < 5 || len(zones.Refused) < 10 {
		t.Fatalf("%d accepted, %d refused: %v", len(zones.Accepted), len(zones.Refused), err)
	}
	for _, name := range zones.Accepted {
		if _, err := TimeZone(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range zones.Refused {
		if _, err := TimeZone(name); invalidField(err) != "tz" {
			t.Errorf("%q: want an InvalidArgument for tz, got %v", name, err)
		}
	}
}
