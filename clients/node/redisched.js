'use strict';
/**
 * redisched for Node.js: runs the Lua scripts of src/redisched/lua through ioredis.
 *
 * The scripts are read at run time, never copied. Each script's header is its contract:
 * `KEYS[i] name type` lines give the keys (`<prefix>:{<topic>}:<name>`) and `ARGV[i] name type`
 * lines the order of the arguments. Times are epoch milliseconds.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { InvalidArgument, REFILL_BATCH, DEFAULT_MAX_BODY_SIZE, scheduleArgs, timesAfter, parseSchedule,
  refillTimes, storedId, newJobId, newName, body: checkBody, integer, epochMs, optionalPositive,
  optionalVersion, MAX_VERSION,
  MAX_TTR_MS, INT32, END_AT_PAST } = require('./schedules');
const { encodeResult } = require('./results');
const { storedName, shown } = require('./ids');

const PARAM = /^-- (KEYS|ARGV)\[(\d+)\] (\w+) (\S+)$/;
const MAX_DELAY_MS = 100 * 365 * 86_400_000; // as the Python client's validate.MAX_DELAY_MS
const MAX_COUNT = 1000;

/** A duration in ms (a finite number, rounded to whole ms) within [low, high]. */
function durationMs(value, field, low = 0, high = MAX_DELAY_MS) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgument(field, `must be a finite number of milliseconds, not ${value === null ? 'null' : typeof value === 'number' ? value : typeof value}`);
  }
  const ms = Math.round(value);
  if (ms < low) throw new InvalidArgument(field, `must be at least ${low} ms`);
  if (ms > high) throw new InvalidArgument(field, `must be at most ${high} ms`);
  return ms;
}

/** An optional ttr in ms ('' or null: the job's or topic's own): 1 ms to a year. */
const optionalTtr = (value, field = 'ttrMs') =>
  (value === '' || value == null ? '' : durationMs(value, field, 1, MAX_TTR_MS));

/** The id (as storedId sends it) of a reserved job whose token is checked, before anything is
 * sent. */
function reservedId(job, field = 'job') {
  if (job === null || typeof job !== 'object') throw new InvalidArgument(field, 'must be a job returned by reserve');
  if (typeof job.token !== 'string' || !job.token) {
    throw new InvalidArgument(field, 'has no token: only jobs returned by reserve can be acked');
  }
  return storedId(job.id, `${field}.id`);
}

/** ack.lua's id, token and result lists for `done` (jobs, or {id, token, result}), each job
 * checked as reservedId and each result encoded as ack's (results.js), before anything is sent. */
function ackLists(done) {
  if (!Array.isArray(done)) throw new InvalidArgument('done', `must be an array of jobs, not ${typeof done}`);
  const id = done.map((job, i) => reservedId(job, `done[${i}]`));
  return { id, token: done.map((job) => job.token),
    result: done.map((job, i) => encodeResult(job.result, `done[${i}].result`)) };
}

const MAX_LIMIT = 10_000; // kick's and requeue's limit, as the Python client's
const SWEEP_INTERVAL_MS = 1000; // the least time between two requeues a reserve runs first

/** The options of put, as the Python client's put takes them. */
const PUT_OPTIONS = ['delayMs', 'runAtMs', 'ttrMs', 'priority', 'maxAttempts', 'replace', 'ifVersion'];

const stale = (id) => new StaleReservation(`stale token for job ${JSON.stringify(shown(id))}`);

const MAX_TEXT_CHARS = 65_536; // as the Python client's validate.MAX_ERROR_CHARS

/** A free text (a release's error, a bury's or an abort's reason), as Python's validate.text: a
 * string of valid Unicode (a lone surrogate has no UTF-8; it was stored as U+FFFD) of at most
 * 64 Ki characters, counted as code points as Python counts them. */
function freeText(value, field) {
  if (typeof value !== 'string') throw new InvalidArgument(field, `must be a string, not ${typeof value}`);
  if (value.length > MAX_TEXT_CHARS && [...value].length > MAX_TEXT_CHARS) {
    throw new InvalidArgument(field, `must be at most ${MAX_TEXT_CHARS} characters`);
  }
  if (!value.isWellFormed()) {
    const at = [...value].findIndex((c) => c.length === 1 && c >= '\ud800' && c <= '\udfff');
    throw new InvalidArgument(field, `must be valid Unicode (no lone surrogates): one at character ${at}`);
  }
  return value;
}

const PUT_STATUS = { 1: 'created', 2: 'exists', 3: 'replaced', 4: 'pending' };
const VERSION_CONFLICT = 5;
const SCHEDULE_ENDED = 6; // schedule.lua: end_ms is not after now (nothing changed)
const SCHEDULE_TIMES_TOO_EARLY = 7; // schedule.lua: the cron times must come after the one it names
const PUT_PARTITIONED = 6; // put.lua: the topic is spread over partitions (version: how many)
const DELETE_PARTITIONED = 6; // delete.lua: no such job, and the topic is spread over partitions
const SCHEDULE_PARTITIONED = 8; // schedule.lua: as PUT_PARTITIONED
const UNSCHEDULE_PARTITIONED = 6; // unschedule.lua: as DELETE_PARTITIONED
// get.lua and pull.lua answer the partition count (an integer) in place of nil, reserve.lua
// after its three times when it leased nothing, and stats.lua as its last value (0: none)
const STATS_PARTITIONS = 19;

class RedischedError extends Error {}
/** The token no longer holds the job: it was requeued, re-reserved, deleted or acked. */
class StaleReservation extends RedischedError {}
/** if_version did not match the job's current version (0: no such job). */
class VersionConflict extends RedischedError {
  constructor(topic, id, current) {
    super(`job ${JSON.stringify(id)} in ${JSON.stringify(topic)} is at version ${current}`);
    this.current = current;
  }
}

/**
 * A put, schedule or delete by id named a partitioned topic itself, whose jobs and schedules
 * live in their ids' partitions (Python's partition_setting): Redis changed nothing. A read
 * that found nothing there (get, reserve, lease, ackAndLease, pull) and stats say so too,
 * rather than answer a quiet nothing. `count`: how many partitions.
 */
class TopicPartitioned extends InvalidArgument {
  constructor(topic, count) {
    super('topic', `topic ${JSON.stringify(topic)} is spread over ${count} partitions: `
      + "each job lives in its id's partition (crc32 of the id mod the count)");
    this.topic = topic;
    this.count = count;
  }
}

/** The folder of the .lua files: an explicit one, $REDISCHED_LUA_DIR, or this repository's. */
function scriptsDir(dir) {
  return dir || process.env.REDISCHED_LUA_DIR || path.resolve(__dirname, '../../src/redisched/lua');
}

/** Parse one script's header into {name, source, sha, keys, argv, header}. */
function parseScript(name, source) {
  const lists = { KEYS: [], ARGV: [] };
  const header = [];
  for (const line of source.split('\n')) {
    if (!line.startsWith('--')) break;
    header.push(line.replace(/^--\s*/, ''));
    const m = PARAM.exec(line);
    if (!m) continue;
    const list = lists[m[1]];
    if (Number(m[2]) !== list.length + 1) throw new Error(`${name}.lua: ${m[1]} out of order`);
    list.push({ name: m[3], type: m[4].replace(/\.\.\.$/, ''), repeats: m[4].endsWith('...') });
  }
  const sha = crypto.createHash('sha1').update(source).digest('hex');
  const keys = lists.KEYS.map((p) => p.name);
  return { name, source, sha, keys, argv: lists.ARGV, header: header.join(' ') };
}

/** The names of the job array's entries, as get.lua's header lists them ("the job array [...]"). */
function jobFields(scripts) {
  const m = /the job array \[([^\]]+)\]/.exec(scripts.get('get').header);
  if (!m) throw new Error("get.lua's header must list 'the job array [id, state, ...]'");
  return m[1].split(',').map((f) => f.trim());
}

/** Every script in `dir`, as a Map by name. */
function loadScripts(dir) {
  const folder = scriptsDir(dir);
  const scripts = new Map();
  for (const file of fs.readdirSync(folder).filter((f) => f.endsWith('.lua')).sort()) {
    const name = file.slice(0, -4);
    scripts.set(name, parseScript(name, fs.readFileSync(path.join(folder, file), 'utf8')));
  }
  if (scripts.size === 0) throw new Error(`no .lua scripts in ${folder}`);
  return scripts;
}

function arg(value) {
  if (Buffer.isBuffer(value) || typeof value === 'string') return value;
  if (Number.isInteger(value)) return String(value);
  if (value === null || value === undefined) return '';
  throw new TypeError(`an argument must be an integer, a string or a Buffer, not ${value}`);
}

/**
 * ARGV of one call from named arguments, in header order. The `type...` parameters form a
 * repeated group at the end: each takes an array, all of one length, interleaved.
 */
function buildArgs(script, named) {
  for (const key of Object.keys(named)) {
    if (!script.argv.some((p) => p.name === key)) {
      throw new TypeError(`${script.name}: unknown argument ${key}`);
    }
  }
  const args = [];
  const group = script.argv.filter((p) => p.repeats);
  for (const p of script.argv.filter((q) => !q.repeats)) {
    if (!(p.name in named)) throw new TypeError(`${script.name}: missing argument ${p.name}`);
    args.push(arg(named[p.name]));
  }
  if (group.length) {
    const columns = group.map((p) => named[p.name]);
    if (!columns.every((c) => Array.isArray(c) && c.length === columns[0].length)) {
      throw new TypeError(`${script.name}: ${group.map((p) => p.name)} must be arrays of one length`);
    }
    columns[0].forEach((_, i) => columns.forEach((c) => args.push(arg(c[i]))));
  }
  return args;
}

const text = (v) => (v === null ? null : v.toString('utf8'));

const camel = (name) => name.replace(/_ms$/, 'Ms').replace(/_([a-z])/g, (_, c) => c.toUpperCase());
const TEXT = new Set(['state', 'token', 'last_error']); // read with U+FFFD (an id: storedName)

/** A job array (see get.lua) as an object named after `fields`; `body` stays a Buffer. */
const camelCache = new Map();

function parseJob(topic, fields, reply) {
  const job = { topic };
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    let name = camelCache.get(field);
    if (name === undefined) camelCache.set(field, (name = camel(field)));
    // an id may be bytes that are not UTF-8 (ids.js)
    job[name] = field === 'id' ? storedName(reply[i]) : TEXT.has(field) ? text(reply[i]) : reply[i];
  }
  job.maxAttempts = job.maxAttempts || null;
  job.pendingVersion = job.pendingVersion || null;
  return job;
}

const optionalMs = (ms) => (ms < 0 ? null : ms);

/** reserve.lua's reply [now_ms, next_due_ms, next_timeout_ms, job...] as a lease. */
function parseLease(topic, fields, reply) {
  const [nowMs, nextDueMs, nextTimeoutMs, ...jobs] = reply;
  // nothing leased, and the count of a partitioned topic where the jobs would be
  if (jobs.length === 1 && typeof jobs[0] === 'number') throw new TopicPartitioned(topic, jobs[0]);
  return {
    nowMs, nextDueMs: optionalMs(nextDueMs), nextTimeoutMs: optionalMs(nextTimeoutMs),
    jobs: jobs.map((job) => parseJob(topic, fields, job)),
  };
}

/** The job of a get.lua or pull.lua reply: null for nil, TopicPartitioned for the count of a
 * partitioned topic (no such job in the topic itself). */
function found(topic, fields, reply) {
  if (reply === null) return null;
  if (typeof reply === 'number') throw new TopicPartitioned(topic, reply);
  return parseJob(topic, fields, reply);
}

class Scheduler {
  /**
   * @param redis an ioredis client
   * @param options.prefix key prefix (default "redisched")
   * @param options.dir folder of the .lua files (see scriptsDir)
   * @param options.clock null for Redis server time, or a function returning epoch ms (tests)
   * @param options.maxBodySize the largest job or schedule body accepted, in bytes (default 1 MiB)
   */
  constructor(redis, { prefix = 'redisched', dir, clock = null, maxBodySize = DEFAULT_MAX_BODY_SIZE } = {}) {
    this.redis = redis;
    this.prefix = prefix;
    this.clock = clock;
    this.maxBodySize = maxBodySize;
    this.scripts = loadScripts(dir);
    this.jobFields = jobFields(this.scripts);
    this.sweptAt = new Map(); // topic -> when its reserve last requeued first (sweepDue)
  }

  /** The keys of `script` for `topic`; a topic Python refuses (keys.topic_problem: 1 to 200
   * characters, counted as code points, of valid Unicode without braces or control characters)
   * throws InvalidArgument. */
  keys(script, topic) {
    if (typeof topic !== 'string' || !topic || /[{}\x00-\x1f\x7f]/.test(topic) || !topic.isWellFormed()
      || (topic.length > 200 && [...topic].length > 200)) {
      throw new InvalidArgument('topic', 'must be 1 to 200 characters of valid Unicode without braces or control characters');
    }
    return script.keys.map((name) => `${this.prefix}:{${topic}}:${name}`);
  }

  /** Run one script by name; the raw reply (bulk strings as Buffers when `buffers`). */
  async call(name, topic, named = {}, { buffers = false } = {}) {
    const script = this.scripts.get(name);
    if (!script) throw new TypeError(`no script ${JSON.stringify(name)}`);
    const keys = this.keys(script, topic);
    const args = buildArgs(script, named);
    const send = buffers ? 'callBuffer' : 'call';
    try {
      return await this.redis[send]('EVALSHA', script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      return this.redis[send]('EVAL', script.source, keys.length, ...keys, ...args);
    }
  }

  now() {
    return this.clock ? Math.round(this.clock()) : '';
  }

  /** Create a job (or replace it with `replace: true`); {status, version}. A bad argument
   * throws InvalidArgument naming it (the Python client's checks) and sends nothing. */
  async put(topic, id, body, options = {}) {
    const { delayMs = 0, runAtMs = '', ttrMs = '', priority = 0, maxAttempts = '', replace = false,
      ifVersion = '' } = options;
    const unknown = Object.keys(options).find((name) => !PUT_OPTIONS.includes(name));
    if (unknown !== undefined) throw new InvalidArgument(unknown, 'is not an option of put');
    if (typeof replace !== 'boolean') throw new InvalidArgument('replace', `must be a boolean, not ${typeof replace}`);
    if (options.delayMs != null && options.runAtMs != null && options.runAtMs !== '') {
      throw new InvalidArgument('delayMs', 'give delayMs or runAtMs, not both');
    }
    this.keys(this.scripts.get('put'), topic);
    const named = {
      now_ms: this.now(), run_at_ms: runAtMs === '' || runAtMs == null ? '' : epochMs(runAtMs, 'runAtMs'),
      delay_ms: durationMs(delayMs, 'delayMs'), ttr_ms: optionalTtr(ttrMs),
      priority: integer(priority, 'priority', -(2 ** 31), INT32),
      max_attempts: maxAttempts === '' ? '' : optionalPositive(maxAttempts, 'maxAttempts'),
      replace: replace ? 1 : 0, if_version: ifVersion === '' ? '' : optionalVersion(ifVersion, 'ifVersion'),
      id: [newJobId(id)], body: [checkBody(body, this.maxBodySize)],
    };
    await this.register(topic);
    const [status, version] = await this.call('put', topic, named);
    if (status === VERSION_CONFLICT) throw new VersionConflict(topic, id, version);
    if (status === PUT_PARTITIONED) throw new TopicPartitioned(topic, version);
    return { status: PUT_STATUS[status], version };
  }

  async get(topic, id) {
    const r = await this.call('get', topic, { now_ms: this.now(), id: storedId(id) }, { buffers: true });
    return found(topic, this.jobFields, r);
  }

  /** Delete a job in any state; true if it existed (a schedule's pending occurrence: its next
   * one is put, so that run alone is skipped). */
  async delete(topic, id, { ifVersion = '' } = {}) {
    const expected = ifVersion === '' ? '' : optionalVersion(ifVersion, 'ifVersion');
    return this.deleteCall(topic, id, expected, '', '');
  }

  /**
   * Stop a job for good, as Python's Client.abort: removed as `delete` removes it (the holder
   * of a running one is told on the wake channel and its ack is then stale; a schedule's pending
   * occurrence: that run alone is skipped), but its history says so: an `aborted` event whose
   * detail is `reason` (and, for a running job, "was running; cancel sent") and the outcome
   * `aborted` (`dead` for a dead job). True if it existed. A bad `reason` (see freeText), id or
   * topic throws InvalidArgument naming it and sends nothing.
   */
  async abort(topic, id, { reason = null } = {}) {
    const text = reason === null || reason === undefined ? '' : freeText(reason, 'reason');
    return this.deleteCall(topic, id, '', 'abort', text);
  }

  /** delete.lua's call: `abort` is 'abort' for abort, '' for a delete. */
  async deleteCall(topic, id, ifVersion, abort, reason) {
    const args = { id: storedId(id), if_version: ifVersion, now_ms: this.now(), abort, reason };
    // a schedule's occurrence: deleting it may leave its schedule short of cron times (refill)
    const [status, version] = id.includes('@')
      ? (await this.withRefill(topic, [['delete', args, false]]))[0]
      : await this.call('delete', topic, args);
    if (status === VERSION_CONFLICT) throw new VersionConflict(topic, shown(id), version);
    if (status === DELETE_PARTITIONED) throw new TopicPartitioned(topic, version);
    return status === 1;
  }

  /** Lease up to `count` ready jobs, each with its token. The topic's timed-out reservations
   * are requeued first, in the same round trip, at most once a second per topic (sweepDue), as
   * the Python client's reserve does. */
  async reserve(topic, { count = 1, ttrMs = '' } = {}) {
    // times 0: the script skips the lease's times, which reserve does not return
    const named = { now_ms: this.now(), count: integer(count, 'count', 1, MAX_COUNT), ttr_ms: optionalTtr(ttrMs),
      promote_limit: 1000, times: 0 };
    const r = this.sweepDue(topic)
      ? (await this.pipeline(topic, [['requeue', { now_ms: '', limit: 1000 }, false], ['reserve', named, true]]))[1]
      : await this.call('reserve', topic, named, { buffers: true });
    return parseLease(topic, this.jobFields, r).jobs;
  }

  /**
   * Whether a reserve of `topic` requeues first: at most once per SWEEP_INTERVAL_MS per topic.
   * A consumer that only calls reserve runs no requeue loop (a Worker and the servers do), so
   * without it a job whose holder died stayed reserved until something else requeued it. A
   * client on its own clock (a test that moves time) never sweeps, so that what it sees does
   * not depend on how fast it runs.
   */
  sweepDue(topic) {
    if (this.clock) return false;
    const now = performance.now();
    const last = this.sweptAt.get(topic);
    if (last !== undefined && now - last < SWEEP_INTERVAL_MS) return false;
    if (this.sweptAt.size >= 10_000) this.sweptAt.clear();
    this.sweptAt.set(topic, now);
    return true;
  }

  /** Like reserve, with the times a consumer sleeps until: {nowMs, nextDueMs, nextTimeoutMs, jobs}. */
  async lease(topic, { count = 1, ttrMs = '' } = {}) {
    const r = await this.call('reserve', topic,
      { now_ms: this.now(), count: integer(count, 'count', 1, MAX_COUNT), ttr_ms: optionalTtr(ttrMs),
        promote_limit: 1000, times: '' },
      { buffers: true });
    return parseLease(topic, this.jobFields, r);
  }

  /** Finish a reserved job; `result` is kept in its history: a Buffer or string as it is,
   * null for none, any other value as JSON (see results.js). */
  async ack(job, result = null) {
    const id = reservedId(job);
    const data = encodeResult(result);
    const [[status]] = await this.withRefill(job.topic,
      [['ack', { now_ms: this.now(), id: [id], token: [job.token], result: [data] }, false]]);
    if (status !== 1) throw stale(job.id);
  }

  /** Put a reserved job back after `delayMs`; the state it went to. `unstarted`: the job was
   * never handed to anyone, so its attempt is given back. */
  async release(job, { delayMs = 0, error = '', unstarted = false } = {}) {
    const id = reservedId(job);
    const [[status, state]] = await this.withRefill(job.topic, [['release', {
      now_ms: this.now(), id, token: job.token, delay_ms: durationMs(delayMs, 'delayMs'),
      error: freeText(error, 'error'),
      refund: unstarted ? 1 : 0,
    }, false]]);
    if (status === 0) throw stale(job.id);
    return state;
  }

  /** Extend a reservation; the new deadline in epoch ms. */
  async touch(job, { ttrMs = '' } = {}) {
    const id = reservedId(job);
    const [status, until] = await this.call('touch', job.topic,
      { now_ms: this.now(), id, token: job.token, ttr_ms: optionalTtr(ttrMs) });
    if (status === 0) throw stale(job.id);
    return until;
  }

  async bury(job, { reason = '' } = {}) {
    const id = reservedId(job);
    const [[status]] = await this.withRefill(job.topic,
      [['bury', { now_ms: this.now(), id, token: job.token, reason: freeText(reason, 'reason') }, false]]);
    if (status === 0) throw stale(job.id);
  }

  /** Move dead jobs back to ready: one by id, else up to `limit` (1 to 10000, checked even
   * with an id, as Python does); how many moved. */
  async kick(topic, id = '', { limit = 100 } = {}) {
    const most = integer(limit, 'limit', 1, MAX_LIMIT);
    return this.call('kick', topic, { now_ms: this.now(), id: id === '' ? '' : storedId(id), limit: most });
  }

  /** Return up to `limit` (1 to 10000) timed-out reservations to the queue (or to dead);
   * [requeued, dead, nextTimeoutMs]. */
  async requeue(topic, { limit = 1000 } = {}) {
    const most = integer(limit, 'limit', 1, MAX_LIMIT);
    return (await this.withRefill(topic, [['requeue', { now_ms: this.now(), limit: most }, false]]))[0];
  }

  /**
   * Ack finished jobs and lease up to `count` more in one round trip (a pipeline: ack, then
   * reserve). `done` holds jobs (or {id, token, result}: `result` an encoded result, see
   * results.js). Resolves to {acked: [bool per job], nowMs, nextDueMs, nextTimeoutMs, jobs};
   * the times are null when there is none. Cron schedules that ran low are refilled after.
   * Every argument is checked (as ackMany's and lease's) before anything is sent.
   */
  async ackAndLease(topic, done, count, { ttrMs = '' } = {}) {
    const most = integer(count, 'count', 1, MAX_COUNT);
    const ttr = optionalTtr(ttrMs);
    const lists = ackLists(done);
    if (!done.length) return { ...(await this.lease(topic, { count: most, ttrMs: ttr })), acked: [] };
    const replies = await this.withRefill(topic, [
      this.ackStep(lists),
      ['reserve', { now_ms: this.now(), count: most, ttr_ms: ttr, promote_limit: 1000, times: '' },
        true],
    ]);
    const lease = parseLease(topic, this.jobFields, replies[1]);
    lease.acked = replies[0].map((status) => status === 1);
    return lease;
  }

  /** Ack jobs (or {id, token, result}) in one round trip; a status per job, true when acked.
   * Each is checked (see ackLists) before anything is sent; none: [] without a call. */
  async ackMany(topic, done) {
    const lists = ackLists(done);
    if (!done.length) return [];
    const [statuses] = await this.withRefill(topic, [this.ackStep(lists)]);
    return statuses.map((status) => status === 1);
  }

  /** ack.lua's step for ackLists' lists. */
  ackStep(lists) {
    return ['ack', { now_ms: this.now(), ...lists }, false];
  }

  /**
   * `steps` (see pipeline) plus a read of the topic's refill set in the same round trip; the
   * step replies. Cron schedules found there get more times afterwards: best effort, a
   * failed refill leaves them in the set for the next call.
   */
  async withRefill(topic, steps) {
    const refillKey = `${this.prefix}:{${topic}}:refill`;
    // the schedules' ids as Buffers: one may be bytes that are not UTF-8 (see ids.js)
    const replies = await this.pipeline(topic,
      [...steps, { command: ['ZRANGE', refillKey, 0, REFILL_BATCH - 1], buffers: true }]);
    const ids = replies.pop();
    if (ids.length) await this.refill(topic, ids).catch(() => {});
    return replies;
  }

  /** Top up the cron times of the schedules `ids` (refill.lua), computed as the Python client does (cron.js). */
  async refill(topic, ids) {
    const entries = await this.call('get_schedule', topic, { id: ids }, { buffers: true });
    let nowMs = this.clock ? Math.round(this.clock()) : null;
    if (nowMs === null) {
      const [seconds, micros] = await this.redis.time();
      nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    }
    await this.pipeline(topic, ids.map((id, i) => ['refill', {
      now_ms: this.now(), id, version: Array.isArray(entries[i]) ? entries[i][1] : 0,
      time: refillTimes(entries[i], nowMs) }, false]));
  }

  /**
   * Run several scripts of one topic in one round trip (a pipeline, not a transaction); their
   * replies in order. A step answered NOSCRIPT (a restarted server) is sent again with EVAL:
   * it did not run, so sending it again is safe.
   */
  async pipeline(topic, steps) {
    const calls = steps.map((step) => {
      if (!Array.isArray(step)) return { command: step.command, buffers: step.buffers };
      const [name, named, buffers] = step;
      const script = this.scripts.get(name);
      if (!script) throw new TypeError(`no script ${JSON.stringify(name)}`);
      const keys = this.keys(script, topic);
      return { script, buffers, rest: [keys.length, ...keys, ...buildArgs(script, named)] };
    });
    const pipe = this.redis.pipeline();
    for (const c of calls) {
      if (c.command) pipe[c.buffers ? 'callBuffer' : 'call'](...c.command);
      else pipe[c.buffers ? 'callBuffer' : 'call']('EVALSHA', c.script.sha, ...c.rest);
    }
    const results = await pipe.exec();
    const replies = [];
    for (let i = 0; i < calls.length; i++) {
      let [err, reply] = results[i];
      if (err && calls[i].script && String(err.message).startsWith('NOSCRIPT')) {
        const c = calls[i];
        reply = await this.redis[c.buffers ? 'callBuffer' : 'call']('EVAL', c.script.source, ...c.rest);
        err = null;
      }
      if (err) throw err;
      replies.push(reply);
    }
    return replies;
  }

  /** The topic's retry backoff settings from its meta hash: {baseMs, maxMs}, null when unset. */
  async topicBackoff(topic) {
    const [base, max] = await this.redis.hmget(`${this.prefix}:{${topic}}:meta`, 'backoff_ms', 'backoff_max_ms');
    return { baseMs: base === null ? null : Number(base), maxMs: max === null ? null : Number(max) };
  }

  /** The Pub/Sub channel on which the scripts announce a topic's new work. */
  wakeChannel(topic) {
    return `${this.prefix}:{${topic}}:wake`;
  }

  async pull(topic) {
    const [r] = await this.withRefill(topic, [['pull', { now_ms: this.now(), promote_limit: 1000 }, true]]);
    return found(topic, this.jobFields, r);
  }

  async stats(topic) {
    const r = await this.call('stats', topic, { now_ms: this.now() });
    const names = ['nowMs', 'scheduled', 'ready', 'reserved', 'dead', 'paused', 'nextDueMs', 'totalPut',
      'totalReserved', 'totalAcked', 'totalReleased', 'totalRequeued', 'totalDead', 'totalPulled',
      'finishedDone', 'finishedCancelled', 'finishedDead', 'finishedPulled', 'finishedAborted'];
    // its jobs live in its partitions: these would be its own name's counts alone
    if (r[STATS_PARTITIONS]) throw new TopicPartitioned(topic, r[STATS_PARTITIONS]);
    return Object.fromEntries(names.map((n, i) => [n, r[i]]));
  }

  /** List `topic` in the topics set, as every call that creates something in it does: a
   * topic Python refuses, or one named "." or "..", throws InvalidArgument and is not listed. */
  async register(topic) {
    this.keys(this.scripts.get('put'), topic);
    await this.redis.sadd(`${this.prefix}:topics`, newName(topic, 'topic'));
  }

  async pause(topic) {
    await this.register(topic);
    return (await this.call('pause', topic)) === 1;
  }

  async resume(topic) {
    return (await this.call('resume', topic)) === 1;
  }

  // -- recurring schedules (schedules.js) ---------------------------------------------------------

  /**
   * Create or replace (by id) a recurring schedule; exactly one of `cron` (5 fields, in `tz`)
   * and `everyMs` (whole seconds). Options: tz ('UTC'), startAtMs, endAtMs, ttrMs, priority,
   * maxAttempts, ifVersion. Resolves to the schedule as getSchedule reads it; a
   * VersionConflict when ifVersion does not match (nothing changed).
   */
  async schedule(topic, id, body, options = {}) {
    const wallMs = this.clock ? Math.round(this.clock()) : Date.now();
    const args = scheduleArgs(id, body, options, wallMs, this.maxBodySize);
    await this.register(topic);
    for (;;) {
      const [[status, version, afterMs], [entry]] = await this.pipeline(topic, [
        ['schedule', { now_ms: this.now(), ...args }, false],
        ['get_schedule', { id: [args.id] }, true],
      ]);
      if (status === SCHEDULE_TIMES_TOO_EARLY) { // its last run is further ahead than the times
        args.time = timesAfter(args, afterMs);
        continue;
      }
      if (status === VERSION_CONFLICT) throw new VersionConflict(topic, args.id, version);
      if (status === SCHEDULE_ENDED) throw new InvalidArgument('endAtMs', END_AT_PAST);
      if (status === SCHEDULE_PARTITIONED) throw new TopicPartitioned(topic, version);
      return parseSchedule(topic, entry);
    }
  }

  /** A schedule by id, or null (TopicPartitioned when there is none and the topic is partitioned:
   * a schedule made over HTTP or the CLI lives in its id's partition). */
  async getSchedule(topic, id) {
    const [entry] = await this.call('get_schedule', topic, { id: [storedId(id)] }, { buffers: true });
    if (typeof entry === 'number') throw new TopicPartitioned(topic, entry);
    return entry ? parseSchedule(topic, entry) : null;
  }

  /** Every schedule of the topic, sorted by id (TopicPartitioned when the topic is partitioned:
   * its schedules are spread over its partitions and itself). */
  async schedules(topic) {
    this.keys(this.scripts.get('get_schedule'), topic);
    // as Buffers (a schedule id may be bytes that are not UTF-8), sorted as Redis orders them
    const [listed, count] = await this.pipeline(topic, [
      { command: ['HKEYS', `${this.prefix}:{${topic}}:schedules`], buffers: true },
      { command: ['HGET', `${this.prefix}:{${topic}}:meta`, 'partitions'] },
    ]);
    if (count !== null) throw new TopicPartitioned(topic, Number(count));
    const ids = listed.sort(Buffer.compare);
    if (!ids.length) return [];
    const entries = await this.call('get_schedule', topic, { id: ids }, { buffers: true });
    // an id unscheduled meanwhile: null, or a partitioned topic's count
    return entries.filter((e) => Array.isArray(e)).map((e) => parseSchedule(topic, e));
  }

  /** Delete a schedule and its pending occurrence, which ends cancelled in its history (a running one
   * is left alone); true if it existed. */
  async unschedule(topic, id, { ifVersion = null } = {}) {
    const expected = ifVersion === null ? '' : ifVersion;
    if (expected !== '' && !(Number.isSafeInteger(expected) && expected >= 1 && expected <= MAX_VERSION)) {
      throw new InvalidArgument('ifVersion', `must be between 1 and ${MAX_VERSION}`);
    }
    const [status, version] = await this.call('unschedule', topic,
      { id: storedId(id), if_version: expected, now_ms: this.now() });
    if (status === VERSION_CONFLICT) throw new VersionConflict(topic, shown(id), version);
    if (status === UNSCHEDULE_PARTITIONED) throw new TopicPartitioned(topic, version);
    return status === 1;
  }
}

module.exports = {
  Scheduler, RedischedError, StaleReservation, VersionConflict, InvalidArgument, TopicPartitioned, encodeResult,
  durationMs,
  MAX_DELAY_MS, MAX_TTR_MS, scriptsDir, parseScript, loadScripts, jobFields, buildArgs, parseJob, parseLease,
};
