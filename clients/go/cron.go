package redisched

// Cron expressions as the Python client reads them: a port of cronsim 2.9 (the library behind
// src/redisched/recurrence.py), forward only, so that this glue accepts exactly the expressions
// Python accepts and computes the same times (conformance/cron_times.json checks both; the Node
// glue's clients/node/cron.js is the same port).
//
// The dialect: 5 fields (minute hour day month weekday), case-insensitive; *, numbers, ranges
// a-b, steps */n, a-b/n and a/n (from a to the field's end), lists; month and weekday names
// (JAN, MON: three letters); weekday 0-7 (0 and 7 are Sunday); in the day field L (last day)
// and LW (last weekday of the month); in the weekday field 5L (last Friday) and 5#2 (second
// Friday). When both the day and the weekday field are restricted (neither starts with *) a day
// matching either runs, else both must match.
//
// DST (the Debian cron convention): when neither the minute nor the hour field starts with *
// the expression runs on local wall-clock times (once when a time repeats, right after the jump
// when it does not exist); otherwise it steps through real time in the zone.

import (
	"errors"
	"sort"
	"strings"
	"time"
)

// cronSyntaxError says why an expression is refused, in cronsim's words ("Bad day-of-week").
type cronSyntaxError string

func (e cronSyntaxError) Error() string { return string(e) }

type cronField struct {
	name      string
	low, high int
	names     []string // month or weekday names, the first of them worth first
	first     int
}

var cronFields = [5]cronField{
	{name: "minute", low: 0, high: 59},
	{name: "hour", low: 0, high: 23},
	{name: "day-of-month", low: 1, high: 31},
	{name: "month", low: 1, high: 12, names: strings.Fields("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC"), first: 1},
	{name: "day-of-week", low: 0, high: 7, names: strings.Fields("SUN MON TUE WED THU FRI SAT"), first: 0},
}

var dayField, dowField = &cronFields[2], &cronFields[4]

const (
	cronLast        = -1000 // the day field's L; as the nth of a weekday: its last in the month
	cronLastWeekday = -1001 // the day field's LW
)

var daysInMonth = [13]int{-1, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// cronItem is one value of a field; in the weekday field nth is 0 (every such day), 1-5 (5#2:
// the second Friday) or cronLast (5L: the last Friday of the month).
type cronItem struct{ value, nth int }

// cronSpec is a parsed expression.
type cronSpec struct {
	minutes, hours, days, months map[int]bool
	weekdays                     map[cronItem]bool
	dayAnd                       bool // day and weekday must both match (one of them starts with *)
	wallClock                    bool // neither minute nor hour starts with *: local wall-clock times
}

// pySpace is what Python's str.split() splits on (Go's strings.Fields misses \x1c-\x1f).
func pySpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, ' ', 0x85, 0xa0, 0x1680,
		0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// cronWords are the words of s as Python's s.split() gives them.
func cronWords(s string) []string { return strings.FieldsFunc(s, pySpace) }

func (f *cronField) bad() error { return cronSyntaxError("Bad " + f.name) }

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// maxDigits is the longest number Python's int() reads (leading zeros count): cronsim refuses a
// longer one.
const maxDigits = 4300

// number reads ASCII digits (a step, an nth); a number too long for an int is out of any range.
func (f *cronField) number(s string) (int, error) {
	if !allDigits(s) || len(s) > maxDigits {
		return 0, f.bad()
	}
	n := 0
	for _, c := range []byte(s) {
		if n = n*10 + int(c-'0'); n > 1_000_000 {
			n = 1_000_000
		}
	}
	return n, nil
}

// value reads a name or a number in the field's range.
func (f *cronField) value(s string) (int, error) {
	for i, name := range f.names {
		if s == name {
			return i + f.first, nil
		}
	}
	v, err := f.number(s)
	if err == nil && (v < f.low || v > f.high) {
		err = f.bad()
	}
	return v, err
}

func span(low, high int) []cronItem {
	out := []cronItem{}
	for v := low; v <= high; v++ {
		out = append(out, cronItem{value: v})
	}
	return out
}

// parse is the values one field takes (upper-cased text), in cronsim's order of checks.
func (f *cronField) parse(s string) ([]cronItem, error) {
	if s == "*" {
		return span(f.low, f.high), nil
	}
	if strings.Contains(s, ",") {
		var out []cronItem
		for _, term := range strings.Split(s, ",") {
			items, err := f.parse(term)
			if err != nil {
				return nil, err
			}
			out = append(out, items...)
		}
		return out, nil
	}
	if f == dowField && strings.Contains(s, "L") {
		if !allDigits(s[:len(s)-1]) {
			return nil, f.bad()
		}
		v, err := f.value(s[:len(s)-1])
		return []cronItem{{v, cronLast}}, err
	}
	if term, nth, ok := strings.Cut(s, "#"); ok && f == dowField {
		n, err := f.number(nth)
		if err != nil || n < 1 || n > 5 {
			return nil, f.bad()
		}
		v, err := f.value(term)
		return []cronItem{{v, n}}, err
	}
	if term, stepText, ok := strings.Cut(s, "/"); ok {
		step, err := f.number(stepText)
		if err != nil || step == 0 {
			return nil, f.bad()
		}
		items, err := f.parse(term)
		if err != nil {
			return nil, err
		}
		values := map[int]bool{}
		for _, it := range items {
			values[it.value] = true
		}
		if len(values) == 1 && (values[cronLast] || values[cronLastWeekday]) {
			return items[:1], nil
		}
		if len(values) == 1 && !strings.Contains(term, "-") {
			items = span(items[0].value, f.high) // a/n: from a to the field's end
		} else {
			items = items[:0]
			for v := range values {
				items = append(items, cronItem{value: v})
			}
			sort.Slice(items, func(i, j int) bool { return items[i].value < items[j].value })
		}
		var out []cronItem
		for i := 0; i < len(items); i += step {
			out = append(out, items[i])
		}
		return out, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		start, err := f.value(a)
		if err != nil {
			return nil, err
		}
		end, err := f.value(b)
		if err != nil || end < start {
			return nil, f.bad()
		}
		return span(start, end), nil
	}
	if f == dayField && s == "LW" {
		return []cronItem{{value: cronLastWeekday}}, nil
	}
	if f == dayField && s == "L" {
		return []cronItem{{value: cronLast}}, nil
	}
	v, err := f.value(s)
	return []cronItem{{value: v}}, err
}

// parseCron parses the words of expr, upper-cased as Python does; the error names the first
// bad field.
func parseCron(expr string) (*cronSpec, error) {
	parts := cronWords(strings.ToUpper(expr))
	if len(parts) != 5 {
		return nil, cronSyntaxError("Wrong number of fields")
	}
	var sets [5]map[int]bool
	weekdays := map[cronItem]bool{}
	for i := range cronFields {
		items, err := cronFields[i].parse(parts[i])
		if err != nil {
			return nil, err
		}
		sets[i] = map[int]bool{}
		for _, it := range items {
			sets[i][it.value] = true
			if i == 4 {
				weekdays[it] = true
			}
		}
	}
	spec := &cronSpec{minutes: sets[0], hours: sets[1], days: sets[2], months: sets[3], weekdays: weekdays,
		dayAnd:    strings.HasPrefix(parts[2], "*") || strings.HasPrefix(parts[4], "*"),
		wallClock: !strings.HasPrefix(parts[0], "*") && !strings.HasPrefix(parts[1], "*")}
	fewest, longest := 1<<30, 0
	for d := range spec.days {
		if d < fewest {
			fewest = d
		}
	}
	for m := range spec.months {
		if daysInMonth[m] > longest {
			longest = daysInMonth[m]
		}
	}
	if fewest > 29 && spec.dayAnd && fewest > longest {
		return nil, dayField.bad()
	}
	return spec, nil
}

// ---- times in a zone, with Python's fold rules ---------------------------------------------
// A local time is wall (Unix seconds of that wall-clock reading in UTC) and fold (1 for the
// second of two instants that read the same, PEP 495).

const maxCronSecond = 253_402_300_799 // 9999-12-31T23:59:59: Python's datetime ends there

// errExhausted: cronsim would stop (no time in 50 years, or past the year 9999).
var errExhausted = errors.New("no further time")

func zoneOffset(t int64, loc *time.Location) int64 {
	_, off := time.Unix(t, 0).In(loc).Zone()
	return int64(off)
}

// readings are the instants (ascending) whose reading in loc is wall, and the offsets a day
// before and after.
func readings(wall int64, loc *time.Location) (instants []int64, before, after int64) {
	before, after = zoneOffset(wall-86_400, loc), zoneOffset(wall+86_400, loc)
	for _, off := range []int64{before, after} {
		if t := wall - off; t+zoneOffset(t, loc) == wall && (len(instants) == 0 || instants[0] != t) {
			instants = append(instants, t)
		}
	}
	sort.Slice(instants, func(i, j int) bool { return instants[i] < instants[j] })
	return instants, before, after
}

// toUnix is the instant of local wall with fold, as Python's aware datetime (a skipped reading:
// fold 0 takes the offset before the jump, fold 1 the one after).
func toUnix(wall int64, fold int, loc *time.Location) int64 {
	instants, before, after := readings(wall, loc)
	switch {
	case len(instants) > 0 && fold == 1:
		return instants[len(instants)-1]
	case len(instants) > 0:
		return instants[0]
	case fold == 1:
		return wall - after
	}
	return wall - before
}

// fromUnix is the local reading of instant t in loc.
func fromUnix(t int64, loc *time.Location) (wall int64, fold int) {
	wall = t + zoneOffset(t, loc)
	if instants, _, _ := readings(wall, loc); len(instants) > 1 && t == instants[len(instants)-1] {
		fold = 1
	}
	return wall, fold
}

func civil(wall int64) time.Time { return time.Unix(wall, 0).UTC() }

func lastDay(d time.Time) int { return time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day() }

func lastWeekday(d time.Time) int {
	last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC)
	switch last.Weekday() {
	case time.Sunday:
		return last.Day() - 2
	case time.Saturday:
		return last.Day() - 1
	}
	return last.Day()
}

// cronIter is cronsim's iterator, forward: the times after a start, one by one.
type cronIter struct {
	spec *cronSpec
	loc  *time.Location
	dt   int64 // local wall-clock seconds
	fold int
}

// cronAfter starts at Unix ms afterMs (its whole second).
func cronAfter(spec *cronSpec, loc *time.Location, afterMs int64) *cronIter {
	start := afterMs / 1000
	if afterMs < 0 && afterMs%1000 != 0 {
		start--
	}
	it := &cronIter{spec: spec, loc: loc}
	it.dt, it.fold = fromUnix(start, loc)
	if spec.wallClock {
		it.fold = 0
	}
	return it
}

func (it *cronIter) now() time.Time { return civil(it.dt) }

// tick moves on seconds of real time (wall-clock time when the expression runs on it).
func (it *cronIter) tick(seconds int64) error {
	if it.spec.wallClock {
		it.dt += seconds
	} else {
		t := toUnix(it.dt, it.fold, it.loc) + seconds
		if t > maxCronSecond {
			return errExhausted // past Python's datetime.max (its OverflowError)
		}
		it.dt, it.fold = fromUnix(t, it.loc)
	}
	if it.dt > maxCronSecond {
		return errExhausted
	}
	return nil
}

func (it *cronIter) matchDay(d time.Time) bool {
	if it.spec.dayAnd {
		return it.matchDom(d) && it.matchDow(d)
	}
	return it.matchDom(d) || it.matchDow(d)
}

func (it *cronIter) matchDom(d time.Time) bool {
	days := it.spec.days
	return days[d.Day()] || (days[cronLastWeekday] && d.Day() == lastWeekday(d)) ||
		(days[cronLast] && d.Day() == lastDay(d))
}

func (it *cronIter) matchDow(d time.Time) bool {
	w := it.spec.weekdays
	names := []int{int(d.Weekday())}
	if d.Weekday() == time.Sunday {
		names = append(names, 7)
	}
	nth := (d.Day() + 6) / 7
	for _, n := range names {
		if w[cronItem{n, 0}] || (w[cronItem{n, cronLast}] && d.Day()+7 > lastDay(d)) || w[cronItem{n, nth}] {
			return true
		}
	}
	return false
}

func (it *cronIter) midnight(d time.Time) { it.dt, it.fold = d.Unix(), 0 }

func (it *cronIter) advanceMonth() error {
	d := it.now()
	if it.spec.months[int(d.Month())] {
		return nil
	}
	d = time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
	for !it.spec.months[int(d.Month())] {
		if d = d.AddDate(0, 1, 0); d.Unix() > maxCronSecond {
			return errExhausted
		}
	}
	it.midnight(d)
	return nil
}

func (it *cronIter) advanceDay() (bool, error) {
	d := it.now().Truncate(24 * time.Hour)
	if it.matchDay(d) {
		return false, nil
	}
	for !it.matchDay(d) {
		if d = d.AddDate(0, 0, 1); d.Unix() > maxCronSecond {
			return false, errExhausted
		}
		if d.Day() == 1 {
			break // a new month: check it first
		}
	}
	it.midnight(d)
	return true, nil
}

func (it *cronIter) advanceHour() (bool, error) {
	if it.spec.hours[it.now().Hour()] {
		return false, nil
	}
	it.dt -= it.dt % 3600
	for !it.spec.hours[it.now().Hour()] {
		if err := it.tick(3600); err != nil {
			return false, err
		}
		if it.now().Hour() == 0 {
			break
		}
	}
	return true, nil
}

func (it *cronIter) advanceMinute() (bool, error) {
	minutes := it.spec.minutes
	if minutes[it.now().Minute()] {
		return false, nil
	}
	it.dt -= it.dt % 60
	if len(minutes) == 1 {
		for target := range minutes {
			if err := it.tick(int64((target-it.now().Minute()+60)%60) * 60); err != nil {
				return false, err
			}
		}
	}
	for !minutes[it.now().Minute()] {
		if err := it.tick(60); err != nil {
			return false, err
		}
		if it.now().Minute() == 0 {
			break
		}
	}
	return true, nil
}

func (it *cronIter) advanceSecond() (bool, error) {
	if it.now().Second() == 0 {
		return false, nil
	}
	if err := it.tick(int64(60 - it.now().Second())); err != nil {
		return false, err
	}
	for it.now().Second() != 0 {
		if err := it.tick(1); err != nil {
			return false, err
		}
	}
	return true, nil
}

// next is the next time (Unix seconds), or errExhausted.
func (it *cronIter) next() (int64, error) {
	if err := it.tick(1); err != nil {
		return 0, err
	}
	startYear := it.now().Year()
	for {
		if err := it.advanceMonth(); err != nil {
			return 0, err
		}
		if it.now().Year() > startYear+50 {
			return 0, errExhausted // as cronsim
		}
		moved := false
		for _, step := range []func() (bool, error){it.advanceDay, it.advanceHour, it.advanceMinute, it.advanceSecond} {
			var err error
			if moved, err = step(); err != nil {
				return 0, err
			} else if moved {
				break
			}
		}
		if !moved {
			break
		}
	}
	if !it.spec.wallClock {
		return toUnix(it.dt, it.fold, it.loc), nil
	}
	for {
		t := toUnix(it.dt, 0, it.loc)
		if t > maxCronSecond {
			return 0, errExhausted
		}
		if instants, _, _ := readings(it.dt, it.loc); len(instants) > 0 {
			return t, nil
		}
		it.dt += 60 // a reading the clocks skip: right after the jump
	}
}

// cronFires reports whether a parsed expression fires at all: cronsim's first time after
// 2000-01-01 in loc.
func cronFires(spec *cronSpec, loc *time.Location) bool {
	it := &cronIter{spec: spec, loc: loc, dt: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()}
	_, err := it.next()
	return err == nil
}

// CronTimes are up to count UTC epoch ms after afterMs at which expr fires in loc; they stop
// at endMs (inclusive, 0: none), 50 years ahead and at the end of the year 9999.
func CronTimes(expr string, loc *time.Location, afterMs int64, count int, endMs int64) []int64 {
	spec, err := parseCron(expr)
	if err != nil || count <= 0 {
		return nil
	}
	it := cronAfter(spec, loc, afterMs)
	horizon := afterMs + lookaheadMs
	var out []int64
	for len(out) < count {
		t, err := it.next()
		if err != nil {
			break
		}
		ms := t * 1000
		if ms <= afterMs {
			continue
		}
		if (endMs != 0 && ms > endMs) || ms > horizon {
			break
		}
		out = append(out, ms)
	}
	return out
}
