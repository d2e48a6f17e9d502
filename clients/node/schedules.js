'use strict';
/**
 * Recurring schedules: validation, cron times and the replies of get_schedule.lua, as in the
 * Python client (src/redisched/schedule_ops.py and recurrence.py).
 *
 * An interval schedule (`everyMs`) runs on its own: reserve.lua and pull.lua put the next
 * occurrence. A cron schedule holds up to 48 upcoming UTC times computed here (cron.js, in the
 * schedule's IANA time zone); when fewer than 16 are left the scripts add it to the topic's
 * `refill` set, and `refillTimes` computes the times refill.lua appends.
 */
const fs = require('node:fs');
const path = require('node:path');
const { CronSyntaxError, parseCron, fires, cronTimes, words } = require('./cron');
const { storedName, escapedBytes } = require('./ids');

const UPCOMING = 48;
const REFILL_BATCH = 10;
const MAX_ID_BYTES = 1024;
const MAX_SCHEDULE_ID_BYTES = MAX_ID_BYTES - '@2000-01-01T00:00:00Z'.length;
/** Why schedule.lua refused a schedule (status 6), as every glue words it. */
const END_AT_PAST = "must be in the future and after the schedule's first run (by the Redis server's clock): the schedule would never run";
const MAX_EVERY_MS = 100 * 365 * 86_400_000;
// recurrence.MAX_CRON_LENGTH: every value of all five fields listed one by one takes ~400
const MAX_CRON_LENGTH = 1024;
const MAX_TTR_MS = 365 * 86_400_000;
const MAX_EPOCH_MS = 253_402_300_799_000;
const INT32 = 2 ** 31 - 1;
const DEFAULT_MAX_BODY_SIZE = 1 << 20;

/** A bad argument: nothing was sent. `field` names it. */
class InvalidArgument extends TypeError {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

const kind = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function jobId(value, field = 'id', maxBytes = MAX_ID_BYTES) {
  if (typeof value !== 'string') throw new InvalidArgument(field, `must be a string, not ${kind(value)}`);
  if (!value) throw new InvalidArgument(field, 'must not be empty');
  if (!value.isWellFormed()) throw new InvalidArgument(field, 'must be valid Unicode (no lone surrogates)');
  if (Buffer.byteLength(value) > maxBytes) throw new InvalidArgument(field, `must be at most ${maxBytes} bytes in UTF-8`);
  return value;
}

/** The id of a job or schedule that exists, as sent to Redis: jobId's string, or, for an id
 * read back from one stored as bytes that are not UTF-8 (see ids.js), those bytes (as Python's
 * validate.stored_id). A new job's or schedule's id must be valid Unicode (jobId). */
function storedId(value, field = 'id') {
  const data = escapedBytes(value);
  if (data === null) return jobId(value, field);
  if (data.length > MAX_ID_BYTES) throw new InvalidArgument(field, `must be at most ${MAX_ID_BYTES} bytes`);
  return data;
}

/** `value` (a checked id or topic) unless it is "." or "..", which a URL path resolves to its
 * parent: no new job, schedule or topic takes one (validate.new_name). Reading and deleting an
 * existing one stay possible. */
function newName(value, field) {
  if (value === '.' || value === '..') {
    throw new InvalidArgument(field, "must not be '.' or '..' (a URL path would resolve it to its parent)");
  }
  return value;
}

/** The id of a job or schedule to create: jobId, and not "." or "..". */
const newJobId = (value, field = 'id', maxBytes = MAX_ID_BYTES) => newName(jobId(value, field, maxBytes), field);

function body(value, maxSize = DEFAULT_MAX_BODY_SIZE) {
  let data;
  if (typeof value === 'string') {
    if (!value.isWellFormed()) throw new InvalidArgument('body', 'must be valid Unicode (no lone surrogates)');
    data = Buffer.from(value, 'utf8');
  } else if (value instanceof Uint8Array) {
    data = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  } else {
    throw new InvalidArgument('body', `must be a Buffer or a string, not ${kind(value)}`);
  }
  if (data.length > maxSize) throw new InvalidArgument('body', `is ${data.length} bytes; the limit is ${maxSize}`);
  return data;
}

function integer(value, field, low, high) {
  if (!Number.isSafeInteger(value)) throw new InvalidArgument(field, `must be an integer, not ${kind(value)}`);
  if (value < low || value > high) throw new InvalidArgument(field, `must be between ${low} and ${high}`);
  return value;
}

const optionalPositive = (value, field) => (value == null ? '' : integer(value, field, 1, INT32));
/** The highest version (the largest integer a Lua number holds exactly): versions go on from
 * version_floor, which with history off grows by about one per job a topic ends. */
const MAX_VERSION = Number.MAX_SAFE_INTEGER;
const optionalVersion = (value, field) => (value == null ? '' : integer(value, field, 1, MAX_VERSION));

function epochMs(value, field) {
  if (value instanceof Date) value = value.getTime();
  if (!Number.isFinite(value)) throw new InvalidArgument(field, `must be epoch milliseconds or a Date, not ${kind(value)}`);
  const ms = Math.round(value);
  if (ms < 0 || ms > MAX_EPOCH_MS) throw new InvalidArgument(field, 'must lie between 1970 and the year 9999');
  return ms;
}

/** Files of the tz database that are no zone every glue knows (recurrence.NOT_ZONES), and the
 * copy trees Python refuses too. */
const NOT_ZONES = new Set(['localtime', 'posixrules', 'Factory']);
const COPY_TREES = ['posix/', 'right/'];
/** Where Python's zoneinfo reads the tz database first (its default TZPATH), those that exist. */
const TZPATH = ['/usr/share/zoneinfo', '/usr/lib/zoneinfo', '/usr/share/lib/zoneinfo', '/etc/zoneinfo'].filter((dir) => {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
});

/** Whether `name` is a file of the tz database Python reads (any name when there is none: Intl decides). */
function inTzPath(name) {
  if (!TZPATH.length) return true;
  return TZPATH.some((dir) => {
    try {
      return fs.statSync(path.join(dir, name)).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * An IANA time zone name (`Europe/Berlin`, `UTC`) for a new schedule, taken only as the Python
 * client takes it (recurrence.time_zone), since any glue may refill its cron times: a clean
 * relative path, none of NOT_ZONES, in the tz database Python reads, spelt as Intl spells it
 * (Intl ignores case, and knows names the database may not have).
 */
function timeZone(value, field = 'tz') {
  if (typeof value !== 'string') throw new InvalidArgument(field, `must be a time zone name, not ${kind(value)}`);
  const unknown = new InvalidArgument(field, `unknown time zone ${JSON.stringify(value)}`);
  if (!value || value.length > 64 || value.includes('..') || NOT_ZONES.has(value)) throw unknown;
  if (COPY_TREES.some((tree) => value.startsWith(tree))) throw unknown;
  if (value.split('/').some((part) => part === '' || part === '.')) throw unknown; // /UTC, Europe//Berlin, ./UTC
  let resolved;
  try {
    resolved = new Intl.DateTimeFormat('en', { timeZone: value }).resolvedOptions().timeZone;
  } catch {
    throw unknown;
  }
  if (resolved !== value && resolved.toLowerCase() === value.toLowerCase()) throw unknown; // utc, europe/berlin
  if (!inTzPath(value)) throw unknown;
  return value;
}

/** An interval in whole seconds, at least 1 s, given in ms. */
function everyMs(value, field = 'everyMs') {
  if (!Number.isFinite(value)) throw new InvalidArgument(field, `must be a finite number of milliseconds, not ${kind(value)}`);
  if (value < 1000) throw new InvalidArgument(field, 'must be at least 1 second');
  if (value % 1000 !== 0) throw new InvalidArgument(field, 'must be a whole number of seconds');
  if (value > MAX_EVERY_MS) throw new InvalidArgument(field, `must be at most ${MAX_EVERY_MS / 1000} seconds`);
  return value;
}

/** The characters of a string as Python's len counts them: a surrogate pair is one. */
const characters = (s) => s.length - (s.match(/[\ud800-\udbff][\udc00-\udfff]/g) || []).length;

/** A 5-field crontab expression of at most MAX_CRON_LENGTH characters (whitespace normalised as
 * Python's `split()` does) that fires, in the Python client's dialect (cron.js). */
function cronExpression(value, tz, field = 'cron') {
  if (typeof value !== 'string') throw new InvalidArgument(field, `must be a string, not ${kind(value)}`);
  // before any parsing: a valid one of 200 KB was stored whole in its schedule's record
  if (characters(value) > MAX_CRON_LENGTH) throw new InvalidArgument(field, `must be at most ${MAX_CRON_LENGTH} characters`);
  const expr = words(value).join(' ');
  if (expr.split(' ').length !== 5) throw new InvalidArgument(field, 'must have 5 fields: minute hour day month weekday');
  let spec;
  try {
    spec = parseCron(expr);
  } catch (err) {
    if (!(err instanceof CronSyntaxError)) throw err;
    throw new InvalidArgument(field, `invalid cron expression ${JSON.stringify(value)}: ${err.message}`);
  }
  if (!fires(spec, tz)) throw new InvalidArgument(field, `cron expression ${JSON.stringify(value)} never fires`);
  return expr;
}

const ceilSecond = (ms) => Math.ceil(ms / 1000) * 1000;

/**
 * schedule.lua's named arguments (all but now_ms) from the options of Scheduler.schedule,
 * validated as the Python client does. `nowMs` is the wall clock (for the first cron times).
 */
function scheduleArgs(id, data, options, nowMs, maxBodySize) {
  const { cron = null, everyMs: every = null, tz = 'UTC', startAtMs = null, endAtMs = null,
    ttrMs = null, priority = 0, maxAttempts = null, ifVersion = null, ...rest } = options;
  const unknown = Object.keys(rest);
  if (unknown.length) throw new InvalidArgument(unknown[0], 'is not an option of schedule');
  const sid = newJobId(id, 'id', MAX_SCHEDULE_ID_BYTES);
  const bytes = body(data, maxBodySize);
  if ((cron === null) === (every === null)) throw new InvalidArgument('cron', 'give exactly one of cron and everyMs');
  const zone = timeZone(tz);
  const start = startAtMs === null ? 0 : epochMs(startAtMs, 'startAtMs');
  const end = endAtMs === null ? 0 : epochMs(endAtMs, 'endAtMs');
  // schedule.lua reads end_ms 0 as no end: the epoch itself is past
  if (endAtMs !== null && end === 0) throw new InvalidArgument('endAtMs', END_AT_PAST);
  if (end && end <= start) throw new InvalidArgument('endAtMs', 'must be after startAtMs');
  const ttr = ttrMs === null ? '' : integer(ttrMs, 'ttrMs', 1, MAX_TTR_MS);
  const args = {
    id: sid, if_version: optionalVersion(ifVersion, 'ifVersion'), every_ms: 0, anchor_ms: '',
    start_ms: start, end_ms: end, ttr_ms: ttr, priority: integer(priority, 'priority', -(2 ** 31), INT32),
    max_attempts: optionalPositive(maxAttempts, 'maxAttempts'), cron: '', tz: zone, body: bytes, time: [],
  };
  if (every !== null) {
    args.every_ms = everyMs(every);
    args.anchor_ms = start ? ceilSecond(start) : '';
  } else {
    args.cron = cronExpression(cron, zone);
    args.time = cronTimes(args.cron, zone, Math.max(start - 1, nowMs - 60_000), UPCOMING, end);
    if (!args.time.length && !end) throw new InvalidArgument('cron', `cron expression ${JSON.stringify(args.cron)} never fires`);
  }
  return args;
}

/**
 * The cron times to send again when schedule.lua answered that all it was sent come before the
 * schedule's first run may (status 7: its last run is further ahead than they reach): up to 48
 * after `afterMs`, the time it named, within the schedule's end.
 */
const timesAfter = (args, afterMs) => cronTimes(args.cron, args.tz, afterMs, UPCOMING, args.end_ms);

const orNull = (ms) => (ms > 0 ? ms : null);

/** One entry of get_schedule.lua's reply (bulk strings as Buffers) as a schedule object. */
function parseSchedule(topic, entry) {
  const [id, version, cron, tz, every, start, end, next, last, priority, ttr, maxAttempts, data] = entry;
  return {
    topic, id: storedName(id), version, cron: cron.length ? cron.toString('utf8') : null,
    everyMs: every || null, tz: tz.toString('utf8'), nextRunAtMs: orNull(next),
    startAtMs: orNull(start), endAtMs: orNull(end), lastRunAtMs: orNull(last), priority,
    ttrMs: ttr, maxAttempts: maxAttempts || null, body: data,
  };
}

/** The times refill.lua appends for one get_schedule.lua entry (an empty list when none). */
function refillTimes(entry, nowMs) {
  if (!Array.isArray(entry)) return []; // nil, or a partitioned topic's count
  const [, , cron, tz, , , end, next, last, , , , , left, lastTime] = entry;
  if (!cron.length) return [];
  const after = next ? Math.max(lastTime, next) : Math.max(nowMs - 1, last);
  return cronTimes(cron.toString('utf8'), tz.toString('utf8'), after, UPCOMING - left, end);
}

module.exports = {
  InvalidArgument, UPCOMING, REFILL_BATCH, DEFAULT_MAX_BODY_SIZE, scheduleArgs, timesAfter, parseSchedule,
  refillTimes, cronTimes, cronExpression, timeZone, jobId, storedId, newJobId, newName, body, integer, epochMs, optionalPositive,
  MAX_TTR_MS, MAX_CRON_LENGTH, INT32, END_AT_PAST, MAX_VERSION, optionalVersion,
};
