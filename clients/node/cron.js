'use strict';
/**
 * Cron expressions as the Python client reads them: a port of cronsim 2.9 (the library behind
 * src/redisched/recurrence.py), forward only, so that this glue accepts exactly the expressions
 * Python accepts and computes the same times (conformance/cron_times.json checks both).
 *
 * The dialect: 5 fields (minute hour day month weekday), case-insensitive; `*`, numbers,
 * ranges `a-b`, steps `*\/n`, `a-b/n` and `a/n` (from a to the field's end), lists; month and
 * weekday names (JAN, MON: three letters); weekday 0-7 (0 and 7 are Sunday); in the day field
 * `L` (last day) and `LW` (last weekday of the month); in the weekday field `5L` (last Friday)
 * and `5#2` (second Friday). When both the day and the weekday field are restricted (neither
 * starts with `*`) a day matching either runs, else both must match.
 *
 * DST (the Debian cron convention): when neither the minute nor the hour field starts with `*`
 * the expression runs on local wall-clock times (once when a time repeats, right after the jump
 * when it does not exist); otherwise it steps through real time in the zone.
 */

/** Why an expression is refused: cronsim's words ("Bad day-of-week"). */
class CronSyntaxError extends Error {}

const FIELDS = [
  { name: 'minute', low: 0, high: 59 },
  { name: 'hour', low: 0, high: 23 },
  { name: 'day-of-month', low: 1, high: 31 },
  { name: 'month', low: 1, high: 12, names: 'JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC'.split(' '), first: 1 },
  { name: 'day-of-week', low: 0, high: 7, names: 'SUN MON TUE WED THU FRI SAT'.split(' '), first: 0 },
];
const [, , DAY, , DOW] = FIELDS;
const LAST = -1000; // the day field's L
const LAST_WEEKDAY = -1001; // the day field's LW
const DAYS_IN_MONTH = [-1, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** The characters Python's str.split() splits on (JavaScript's \s differs: \x1c-\x1f, \x85, \ufeff). */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

const bad = (field) => new CronSyntaxError(`Bad ${field.name}`);
const digits = (s) => /^[0-9]+$/.test(s);
/** The longest number Python's int() reads (leading zeros count): cronsim refuses a longer one. */
const MAX_DIGITS = 4300;

/** The words of `value` as Python's `value.split()` gives them. */
const words = (value) => value.split(PY_SPACE).filter(Boolean);

function number(field, s) {
  if (!digits(s) || s.length > MAX_DIGITS) throw bad(field);
  return Number(s);
}

function value(field, s) {
  const named = field.names ? field.names.indexOf(s) : -1;
  if (named >= 0) return named + field.first;
  const v = number(field, s);
  if (v < field.low || v > field.high) throw bad(field);
  return v;
}

/** `a` modulo `b` rounding down, as Python's `%` (JavaScript's keeps the sign of `a`: times before 1970). */
const floorMod = (a, b) => ((a % b) + b) % b;

const span = (low, high) => Array.from({ length: high - low + 1 }, (_, i) => low + i);

/**
 * The values one field takes, in cronsim's order of checks (upper-cased text). A weekday entry is
 * a key: `"5"` (every Friday), `"5L"` (the last one of the month), `"5#2"` (the second).
 */
function parseField(field, s) {
  if (s === '*') return span(field.low, field.high);
  if (s.includes(',')) return s.split(',').flatMap((term) => parseField(field, term));
  if (field === DOW && s.includes('L')) {
    if (!digits(s.slice(0, -1))) throw bad(field);
    return [`${value(field, s.slice(0, -1))}L`];
  }
  if (field === DOW && s.includes('#')) {
    const at = s.indexOf('#');
    const nth = number(field, s.slice(at + 1));
    if (nth < 1 || nth > 5) throw bad(field);
    return [`${value(field, s.slice(0, at))}#${nth}`];
  }
  if (s.includes('/')) {
    const at = s.indexOf('/');
    const term = s.slice(0, at);
    const step = number(field, s.slice(at + 1));
    if (step === 0) throw bad(field);
    const items = [...new Set(parseField(field, term))];
    if (items.length === 1 && (items[0] === LAST || items[0] === LAST_WEEKDAY)) return items;
    if (items.length === 1 && !term.includes('-')) {
      return span(items[0], field.high).filter((_, i) => i % step === 0); // a/n: from a to the end
    }
    return items.sort((a, b) => a - b).filter((_, i) => i % step === 0);
  }
  if (s.includes('-')) {
    const at = s.indexOf('-');
    const start = value(field, s.slice(0, at));
    const end = value(field, s.slice(at + 1));
    if (end < start) throw bad(field);
    return span(start, end);
  }
  if (field === DAY && s === 'LW') return [LAST_WEEKDAY];
  if (field === DAY && s === 'L') return [LAST];
  return [value(field, s)];
}

/**
 * A parsed expression (the words of `expr`, upper-cased as Python does); throws
 * CronSyntaxError naming the first bad field.
 */
function parseCron(expr) {
  const parts = words(expr.toUpperCase());
  if (parts.length !== 5) throw new CronSyntaxError('Wrong number of fields');
  const [minutes, hours, days, months, weekdays] = FIELDS.map((f, i) => new Set(parseField(f, parts[i]).map(String)));
  const spec = {
    minutes, hours, days, months, weekdays,
    dayAnd: parts[2].startsWith('*') || parts[4].startsWith('*'),
    wallClock: !parts[0].startsWith('*') && !parts[1].startsWith('*'),
  };
  const fewest = Math.min(...[...days].map(Number));
  if (fewest > 29 && spec.dayAnd && fewest > Math.max(...[...months].map((m) => DAYS_IN_MONTH[m]))) {
    throw bad(DAY);
  }
  return spec;
}

// ---- times in a zone, with Python's fold rules ---------------------------------------------
// A local time is `wall` (epoch ms of that wall-clock reading in UTC) and `fold` (1 for the
// second of two instants that read the same, PEP 495).

const DAY_MS = 86_400_000;
const MAX_MS = 253_402_300_799_000; // 9999-12-31T23:59:59: Python's datetime ends there
/** Thrown when cronsim would stop: no time in 50 years, or past the year 9999. */
class Exhausted extends Error {}

const formats = new Map();

/** The UTC offset (ms) of `tz` at epoch `ms` (a whole second). */
function offset(ms, tz) {
  let format = formats.get(tz);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric',
      month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formats.set(tz, format);
  }
  const p = Object.fromEntries(format.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - ms;
}

/** The instants (ascending) whose reading in `tz` is `wall`, and the offsets around it. */
function readings(wall, tz) {
  const before = offset(wall - DAY_MS, tz);
  const after = offset(wall + DAY_MS, tz);
  const found = new Set();
  for (const o of [before, after]) {
    const t = wall - o;
    if (t + offset(t, tz) === wall) found.add(t);
  }
  return { instants: [...found].sort((a, b) => a - b), before, after };
}

/** Epoch ms of local `wall` with `fold`, as Python's aware datetime (a skipped reading: fold 0
 * takes the offset before the jump, fold 1 the one after). */
function toUtc(wall, fold, tz) {
  const { instants, before, after } = readings(wall, tz);
  if (instants.length) return fold ? instants[instants.length - 1] : instants[0];
  return wall - (fold ? after : before);
}

/** The local reading of epoch `ms` in `tz`: [wall, fold]. */
function fromUtc(ms, tz) {
  const wall = ms + offset(ms, tz);
  const { instants } = readings(wall, tz);
  return [wall, instants.length > 1 && ms === instants[instants.length - 1] ? 1 : 0];
}

const isImaginary = (wall, tz) => readings(wall, tz).instants.length === 0;

function lastWeekday(year, month) {
  const last = new Date(Date.UTC(year, month, 0));
  const dow = last.getUTCDay();
  return last.getUTCDate() - (dow === 0 ? 2 : dow === 6 ? 1 : 0);
}

/** cronsim's iterator, forward: the times after a start, one by one. */
class Iterator {
  /** Start at local `wall` (with `fold`); the first time comes after it. */
  constructor(spec, tz, wall, fold = 0) {
    [this.spec, this.tz, this.dt, this.fold] = [spec, tz, wall, spec.wallClock ? 0 : fold];
  }

  /** Start at epoch `afterMs` (its whole second). */
  static after(spec, tz, afterMs) {
    return new Iterator(spec, tz, ...fromUtc(Math.floor(afterMs / 1000) * 1000, tz));
  }

  get date() {
    return new Date(this.dt);
  }

  /** Move on `seconds` of real time (wall-clock time when the expression runs on it). */
  tick(seconds = 1) {
    if (this.spec.wallClock) {
      this.dt += seconds * 1000;
    } else {
      const utc = toUtc(this.dt, this.fold, this.tz) + seconds * 1000;
      if (utc > MAX_MS) throw new Exhausted(); // past Python's datetime.max (its OverflowError)
      [this.dt, this.fold] = fromUtc(utc, this.tz);
    }
    if (this.dt > MAX_MS) throw new Exhausted();
  }

  /** Set the wall-clock fields below `unit` to 0 (the fold stays). */
  truncate(unit) {
    this.dt -= floorMod(this.dt, unit);
  }

  /** Midnight of `day` (epoch ms of its UTC midnight), fold 0. */
  midnight(day) {
    [this.dt, this.fold] = [day, 0];
  }

  matchDay(d) {
    return this.spec.dayAnd ? this.matchDom(d) && this.matchDow(d) : this.matchDom(d) || this.matchDow(d);
  }

  matchDom(d) {
    const { days } = this.spec;
    const day = d.getUTCDate();
    if (days.has(String(day))) return true;
    if (days.has(String(LAST_WEEKDAY)) && day === lastWeekday(d.getUTCFullYear(), d.getUTCMonth() + 1)) return true;
    return days.has(String(LAST)) && day === new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  }

  matchDow(d) {
    const { weekdays } = this.spec;
    const dow = d.getUTCDay(); // 0-6; 7 names Sunday too
    const names = dow === 0 ? ['0', '7'] : [String(dow)];
    const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
    const nth = Math.floor((d.getUTCDate() + 6) / 7);
    return names.some((n) => weekdays.has(n) || (weekdays.has(`${n}L`) && d.getUTCDate() + 7 > last) || weekdays.has(`${n}#${nth}`));
  }

  advanceMonth() {
    let d = this.date;
    if (this.spec.months.has(String(d.getUTCMonth() + 1))) return;
    d = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    while (!this.spec.months.has(String(new Date(d).getUTCMonth() + 1))) {
      const n = new Date(d);
      d = Date.UTC(n.getUTCFullYear(), n.getUTCMonth() + 1, 1);
      if (d > MAX_MS) throw new Exhausted();
    }
    this.midnight(d);
  }

  advanceDay() {
    let day = this.dt - floorMod(this.dt, DAY_MS);
    if (this.matchDay(new Date(day))) return false;
    while (!this.matchDay(new Date(day))) {
      day += DAY_MS;
      if (day > MAX_MS) throw new Exhausted();
      if (new Date(day).getUTCDate() === 1) break; // a new month: check it first
    }
    this.midnight(day);
    return true;
  }

  advanceHour() {
    if (this.spec.hours.has(String(this.date.getUTCHours()))) return false;
    this.truncate(3_600_000);
    while (!this.spec.hours.has(String(this.date.getUTCHours()))) {
      this.tick(3600);
      if (this.date.getUTCHours() === 0) break;
    }
    return true;
  }

  advanceMinute() {
    const { minutes } = this.spec;
    if (minutes.has(String(this.date.getUTCMinutes()))) return false;
    this.truncate(60_000);
    if (minutes.size === 1) {
      const [target] = minutes;
      this.tick((((Number(target) - this.date.getUTCMinutes()) % 60) + 60) % 60 * 60);
    }
    while (!minutes.has(String(this.date.getUTCMinutes()))) {
      this.tick(60);
      if (this.date.getUTCMinutes() === 0) break;
    }
    return true;
  }

  advanceSecond() {
    const second = this.date.getUTCSeconds();
    if (second === 0) return false;
    this.tick(60 - second);
    while (this.date.getUTCSeconds() !== 0) this.tick();
    return true;
  }

  /** The next time (epoch ms); throws Exhausted when there is none. */
  next() {
    this.tick();
    const startYear = this.date.getUTCFullYear();
    for (;;) {
      this.advanceMonth();
      if (this.date.getUTCFullYear() > startYear + 50) throw new Exhausted(); // as cronsim
      if (this.advanceDay() || this.advanceHour() || this.advanceMinute() || this.advanceSecond()) continue;
      break;
    }
    if (!this.spec.wallClock) return toUtc(this.dt, this.fold, this.tz);
    for (;;) {
      const utc = toUtc(this.dt, 0, this.tz);
      if (utc > MAX_MS) throw new Exhausted();
      if (!isImaginary(this.dt, this.tz)) return utc;
      this.dt += 60_000; // a reading the clocks skip: right after the jump
    }
  }
}

/** Whether a parsed expression fires at all: cronsim's first time after 2000-01-01 in `tz`. */
function fires(spec, tz) {
  try {
    new Iterator(spec, tz, Date.UTC(2000, 0, 1)).next();
    return true;
  } catch (err) {
    if (err instanceof Exhausted) return false;
    throw err;
  }
}

/**
 * Up to `count` UTC epoch ms after `afterMs` at which `expr` fires in `tz`; stops at `endMs`
 * (inclusive, 0: none), 50 years ahead and at the end of the year 9999.
 */
function cronTimes(expr, tz, afterMs, count, endMs = 0, lookaheadMs = 50 * 365 * DAY_MS) {
  const out = [];
  if (count <= 0) return out;
  let it;
  try {
    it = Iterator.after(parseCron(expr), tz, afterMs);
  } catch (err) {
    if (err instanceof CronSyntaxError) return out;
    throw err;
  }
  const horizon = afterMs + lookaheadMs;
  while (out.length < count) {
    let ms;
    try {
      ms = it.next();
    } catch (err) {
      if (err instanceof Exhausted) break;
      throw err;
    }
    if (ms <= afterMs) continue;
    if ((endMs && ms > endMs) || ms > horizon) break;
    out.push(ms);
  }
  return out;
}

module.exports = { CronSyntaxError, parseCron, fires, cronTimes, words };
