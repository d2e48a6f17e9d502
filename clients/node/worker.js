'use strict';
/**
 * The Node.js worker: lease due jobs, run their handlers, ack or release them.
 *
 * The same loop as the Python Worker (src/redisched/worker.py), on the same scripts. Per topic
 * one loop talks to Redis: each round trip acks the jobs finished since the last one and leases
 * as many new ones as there are free slots (a pipeline of ack.lua and reserve.lua). When a topic
 * has nothing due, its loop sleeps until the lease's next_due_ms or next_timeout_ms (server
 * time), or until the topic's wake channel announces new work: no polling. A reservation
 * deadline that passes (a worker died) makes the loop run requeue.lua. Handlers running longer
 * than half their ttr get their lease extended (touch.lua). A failed handler releases its job
 * with the topic's backoff; release.lua sends it to dead when max_attempts are used up.
 *
 * stop() (or SIGTERM/SIGINT) stops gracefully: nothing more is leased, running handlers get
 * `graceMs` to finish, leased jobs that never started go back with their attempt refunded,
 * handlers still running after the grace period are aborted (their AbortSignal) and released,
 * their attempt refunded too (the stop cut them short, not the job: last_error says so).
 *
 * A running job deleted, replaced, expired or aborted is announced on the same wake channel
 * (`c<token>:<id>`, the reservation taken away): the handler of the attempt holding that token
 * has its AbortSignal aborted at once (with a Cancelled), and when the handler ends, however it
 * ends, the job is released, never acked: stale for a delete, an abort or an expiry; for a
 * replace, the new version is scheduled at once. A cancel read before the reply of the lease
 * that took the job is remembered (the last REMEMBERED_CANCELS of each topic): that job is
 * released unstarted.
 */
const {
  Scheduler, StaleReservation, InvalidArgument, TopicPartitioned, durationMs, MAX_TTR_MS,
} = require('./redisched');
const { encodeResult } = require('./results');
const { storedName } = require('./ids');

const MAX_LEASE = 1000;
/** Milliseconds an idle topic sleeps at most, in case a wake-up message was lost. */
const MAX_IDLE_MS = 10_000;
/** The most handlers a Worker runs at once. */
const MAX_CONCURRENCY = 10_000;
/** Milliseconds a finished job's ack may wait to share a round trip with others. */
const ACK_DELAY_MS = 5;
const STOPPED_ERROR = 'the worker stopped before the handler finished';
const CANCELLED_ERROR = 'cancelled: the job was deleted, replaced, expired or aborted while running';
/** A wake message `c<token>:<id>` names a reservation to cancel: the token it held when a
 * script took it away (decimal digits, so the first ':' ends it) and the job's id. The scripts'
 * other messages are numbers; `x<id>`, the cancel of older scripts, named no reservation and is
 * ignored (docs/design.md section 7). */
const CANCEL_PREFIX = 'c';
const LEGACY_CANCEL_PREFIX = 'x';
/** Cancelled reservations remembered per topic, for a lease whose reply is read after them. */
const REMEMBERED_CANCELS = 10_000;
const MAX_ERROR_TEXT = 4000;
/** A handler returning KEEP leaves its job reserved: someone else acks it with the token. */
const KEEP = Symbol('redisched.keep');

/** Thrown by a handler to run the job again after `delayMs` (the attempt still counts). */
class Retry extends Error {
  /** A delay that is not 0 ms to a century, or a reason that is not a string, throws
   * InvalidArgument here (as the Python Retry raises), so the handler fails with backoff. */
  constructor(delayMs = 0, reason = 'retry requested') {
    delayMs = durationMs(delayMs, 'delayMs');
    if (typeof reason !== 'string') throw new InvalidArgument('reason', `must be a string, not ${typeof reason}`);
    super(`${reason} (in ${delayMs / 1000} s)`);
    this.delayMs = delayMs;
    this.reason = reason;
  }
}

/** The reason of a handler's aborted AbortSignal when its job was deleted, replaced, expired or
 * aborted while it ran: its result would not apply. */
class Cancelled extends Error {
  constructor(message = CANCELLED_ERROR) {
    super(message);
    this.name = 'Cancelled';
  }
}

/** Exponential backoff with jitter: attempt n waits min(max, base * 2^(n-1)), minus up to `jitter` of it. */
class Backoff {
  constructor({ baseMs = 1000, maxMs = 3_600_000, jitter = 0.2 } = {}) {
    if (!(baseMs >= 0 && maxMs >= baseMs && jitter >= 0 && jitter <= 1)) {
      throw new RangeError('backoff: need 0 <= baseMs <= maxMs and 0 <= jitter <= 1');
    }
    Object.assign(this, { baseMs, maxMs, jitter });
  }

  /** The delay after attempt `attempt` (1 = the first run), with jitter, in ms. */
  delayMs(attempt) {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 64));
    return Math.round(ceiling * (1 - this.jitter * Math.random()));
  }
}

/** A settable flag to wait on, with a timeout (asyncio.Event with wait_for). */
class Kick {
  constructor() {
    this.flag = false;
    this.waiters = new Set();
  }

  set() {
    this.flag = true;
    const waiters = [...this.waiters];
    this.waiters.clear();
    waiters.forEach((wake) => wake());
  }

  clear() {
    this.flag = false;
  }

  /** Resolves when set, or after `ms` (never when ms is null). */
  wait(ms = null) {
    if (this.flag) return Promise.resolve();
    return new Promise((resolve) => {
      let timer = null;
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      this.waiters.add(wake);
      // unref: a wait that lost its race (a grace period that was not needed) must not keep
      // the process alive; the worker's connections do that while it runs.
      if (ms !== null) timer = setTimeout(wake, Math.max(0, Math.ceil(ms))).unref();
    });
  }
}

function describe(err) {
  const text = err instanceof Error ? String(err.stack || `${err.name}: ${err.message}`) : String(err);
  return text.length <= MAX_ERROR_TEXT ? text : `...${text.slice(-MAX_ERROR_TEXT)}`;
}

/** An attempt's AbortController, made the first time a handler or the worker needs it. */
function controller(a) {
  if (a.controller === null) a.controller = new AbortController();
  return a.controller;
}

const QUIET = { info() {}, warn: console.warn, error: console.error };

class Worker {
  /**
   * @param redis an ioredis client or Cluster (or a Scheduler over one)
   * @param handlers topic -> async (job, {signal}) => result. Returning acks the job, the value kept as its result (results.js; KEEP leaves
   *   it reserved); throwing releases it with backoff (a Retry picks the delay); a job whose
   *   max_attempts are used up goes dead with the error as its last_error.
   * @param options.concurrency handlers running at once across all topics (default 50)
   * @param options.ttrMs each lease's length (default: each job's own ttr)
   * @param options.backoff a Backoff (default: the topic's backoff_ms/backoff_max_ms, else 1 s to 1 h)
   * @param options.graceMs how long running handlers may finish after stop() (default 30 s)
   * @param options.handleSignals stop gracefully on SIGTERM and SIGINT (default true)
   * @param options.logger {info, warn, error} (default: warnings and errors to the console)
   */
  constructor(redis, handlers, { concurrency = 50, ttrMs = null, backoff = null, graceMs = 30_000,
    handleSignals = true, logger = QUIET, prefix, dir } = {}) {
    this.scheduler = redis instanceof Scheduler ? redis : new Scheduler(redis, { prefix, dir });
    if (!handlers || typeof handlers !== 'object' || !Object.keys(handlers).length) {
      throw new TypeError('handlers: must map at least one topic to a handler');
    }
    this.topics = Object.entries(handlers).map(([name, handler]) => {
      if (typeof handler !== 'function') throw new TypeError(`handlers[${JSON.stringify(name)}]: must be a function`);
      this.scheduler.keys(this.scheduler.scripts.get('reserve'), name); // validates the name
      return { name, handler, backoff: null, done: [], doneSince: 0, kick: new Kick(), requeueAt: null,
        saturated: false, failures: 0, running: new Map(), cancelled: new Set() };
    });
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency: must be an integer from 1 to ${MAX_CONCURRENCY}`);
    }
    if (ttrMs !== null) ttrMs = durationMs(ttrMs, 'ttrMs', 1, MAX_TTR_MS);
    graceMs = durationMs(graceMs, 'graceMs');
    if (backoff !== null && !(backoff instanceof Backoff)) throw new TypeError('backoff: must be a Backoff');
    Object.assign(this, { concurrency, ttrMs, backoff, graceMs, handleSignals, log: logger });
    this.running = false;
    this.stopping = false;
  }

  /** Stop gracefully; a second call cuts the grace period short. */
  stop() {
    if (this.stopping) this.force.set();
    this.stopping = true;
    if (!this.running) return;
    this.stopped.set();
    this.topics.forEach((t) => t.kick.set());
  }

  /** Serve the topics until stop() or a signal; resolves once stopped. `onReady` is called
   * once the worker is subscribed to its wake channels (no put goes unnoticed from then on). */
  async run({ onReady = null } = {}) {
    if (this.running) throw new Error('this worker is already running');
    this.running = true;
    this.stopped = new Kick();
    this.force = new Kick();
    this.idle = new Kick();
    this.free = this.concurrency;
    this.refillAt = Math.max(1, Math.floor(this.concurrency / 10));
    this.active = new Set();
    this.starved = new Set();
    this.offsetMs = 0;
    const redis = this.scheduler.redis;
    const subscriber = redis.duplicate();
    this.subscriber = subscriber;
    const byChannel = new Map(this.topics.map((t) => [this.scheduler.wakeChannel(t.name), t]));
    // read as bytes: a cancel names its job's id, which may be bytes that are not UTF-8 (ids.js)
    subscriber.on('messageBuffer', (channelBytes, data) => {
      const t = byChannel.get(channelBytes.toString('utf8'));
      if (!t) return;
      const message = storedName(data);
      if (message.startsWith(CANCEL_PREFIX)) this.onCancel(t, message.slice(CANCEL_PREFIX.length));
      else if (!message.startsWith(LEGACY_CANCEL_PREFIX)) t.kick.set();
    });
    // Messages may have been missed while reconnecting: every topic looks again.
    subscriber.on('ready', () => this.topics.forEach((t) => t.kick.set()));
    subscriber.on('error', (err) => this.log.warn(`redisched worker: wake-up connection: ${err.message}`));
    const onSignal = (sig) => {
      this.log.info(`${sig}: stopping (send it again to skip the grace period)`);
      this.stop();
    };
    const signals = this.handleSignals ? ['SIGTERM', 'SIGINT'] : [];
    signals.forEach((sig) => process.on(sig, onSignal));
    let heartbeat = null;
    try {
      await subscriber.subscribe(...byChannel.keys());
      // after the subscription, as the worker started before this check: with the read first,
      // a loaded machine now and then left the first cancel of a running job unheard
      // (test/cancel.test.js failed 2-3 of 16 parallel runs; none of 24 in this order)
      await this.refusePartitioned();
      for (const t of this.topics) t.backoff = this.backoff || await this.topicBackoff(t.name);
      heartbeat = this.heartbeat();
      const loops = this.topics.map((t) => this.topicLoop(t));
      if (this.stopping) this.stopped.set(); // stop() came before run()
      if (onReady) onReady();
      await this.stopped.wait();
      await this.shutdown(loops);
    } finally {
      if (heartbeat) heartbeat.stop();
      signals.forEach((sig) => process.removeListener(sig, onSignal));
      subscriber.disconnect();
      this.running = false;
      this.stopping = false;
    }
  }

  /** Throws TopicPartitioned for a topic spread over partitions (its meta's mark, set by the
   * Python side): its jobs live in its partitions, which this worker does not route to, so a
   * lease of the topic itself would throw on every round trip. Serve the partitions' names
   * (`<topic>~p<i>`) instead, or use the Python Worker, which serves each partition. */
  async refusePartitioned() {
    const marks = await Promise.all(this.topics.map(
      (t) => this.scheduler.redis.hget(`${this.scheduler.prefix}:{${t.name}}:meta`, 'partitions')));
    marks.forEach((count, i) => {
      if (count !== null) throw new TopicPartitioned(this.topics[i].name, Number(count));
    });
  }

  async topicBackoff(topic) {
    const { baseMs, maxMs } = await this.scheduler.topicBackoff(topic);
    const base = baseMs ?? 1000;
    return new Backoff({ baseMs: base, maxMs: Math.max(base, maxMs ?? 3_600_000) });
  }

  serverNow() {
    return Date.now() + this.offsetMs;
  }

  // -- leasing --------------------------------------------------------------------------------

  async topicLoop(t) {
    while (!this.stopping) {
      try {
        await this.step(t);
        t.failures = 0;
      } catch (err) {
        t.failures += 1;
        const pause = Math.min(50 * 2 ** t.failures, 5000);
        this.log.warn(`redisched worker: topic ${t.name}: ${err.message}; retrying in ${pause} ms`);
        await this.stopped.wait(pause);
      }
    }
  }

  /** One round trip: requeue if a reservation timed out, else ack + lease (+ sleep). */
  async step(t) {
    t.kick.clear(); // from here on, a wake-up (or a finished job) ends the next sleep
    if (t.requeueAt !== null && this.serverNow() >= t.requeueAt) {
      await this.requeue(t);
      return;
    }
    const count = Math.min(this.free, MAX_LEASE);
    if (count <= 0 || (count < this.refillAt && t.saturated && this.active.size)) {
      // Few free slots while more jobs wait: let finished jobs gather a while, so that one
      // round trip acks and refills many. Acks wait ACK_DELAY_MS at most.
      if (!t.done.length || Date.now() < t.doneSince + ACK_DELAY_MS) {
        this.starved.add(t);
        await t.kick.wait(t.done.length ? t.doneSince + ACK_DELAY_MS - Date.now() : null);
        return;
      }
      if (count <= 0) {
        await this.flushAcks(t);
        return;
      }
    }
    const done = t.done;
    t.done = [];
    this.free -= count;
    const sent = Date.now();
    let lease;
    try {
      lease = await this.scheduler.ackAndLease(t.name, done, count, { ttrMs: this.ttrMs ?? '' });
    } catch (err) {
      this.free += count;
      t.done = done.concat(t.done); // acked again later: a token is never applied twice
      throw err;
    }
    this.offsetMs = lease.nowMs - (sent + Date.now()) / 2;
    this.free += count - lease.jobs.length;
    if (this.free > 0) this.wakeStarved();
    lease.acked.forEach((ok, i) => ok || this.log.warn(
      `redisched worker: job ${done[i].id} of ${t.name}: ack rejected, the reservation was lost`));
    t.saturated = lease.jobs.length === count;
    if (lease.jobs.length) this.dispatch(t, lease.jobs);
    t.requeueAt = lease.nextTimeoutMs;
    if (t.requeueAt !== null && t.requeueAt <= lease.nowMs) {
      await this.requeue(t);
      return;
    }
    if (!t.saturated) await this.sleep(t, lease.nowMs, lease.nextDueMs);
  }

  async requeue(t) {
    // Its cancel messages name the ended reservations' tokens: read late, they leave the
    // new attempts of those ids alone.
    const [, , next] = await this.scheduler.requeue(t.name);
    t.requeueAt = next < 0 ? null : next;
  }

  /** Sleep until the next job is due or a reservation times out, or a kick. */
  async sleep(t, nowMs, nextDueMs) {
    const due = nextDueMs !== null && nextDueMs > nowMs ? nextDueMs : null; // due yet unleased: paused
    const deadlines = [due, t.requeueAt].filter((ms) => ms !== null);
    const wait = deadlines.length ? Math.min(MAX_IDLE_MS, Math.min(...deadlines) - this.serverNow()) : MAX_IDLE_MS;
    await t.kick.wait(wait);
  }

  wakeStarved() {
    const starved = [...this.starved];
    this.starved.clear();
    starved.forEach((t) => t.kick.set());
  }

  async flushAcks(t) {
    const done = t.done;
    t.done = [];
    if (!done.length) return;
    try {
      const acked = await this.scheduler.ackMany(t.name, done);
      acked.forEach((ok, i) => ok || this.log.warn(
        `redisched worker: job ${done[i].id} of ${t.name}: ack rejected, the reservation was lost`));
    } catch (err) {
      this.log.warn(`redisched worker: could not ack ${done.length} jobs of ${t.name} (${err.message}); they return after their ttr`);
    }
  }

  // -- running handlers -----------------------------------------------------------------------

  dispatch(t, jobs) {
    const now = Date.now();
    for (const job of jobs) {
      const ttr = this.ttrMs ?? job.ttrMs;
      const attempt = { job, topic: t, ttr, touchAt: now + ttr / 2, lost: false, finished: false,
        started: false, cancelled: false, controller: null, promise: null };
      this.active.add(attempt);
      // Leased during a stop: handed to no one, so released with the attempt refunded.
      if (this.stopping) continue;
      // Its cancel was read before this lease's reply: released unstarted.
      if (t.cancelled.size && t.cancelled.has(`${job.token}:${job.id}`)) attempt.cancelled = true;
      t.running.set(job.id, attempt);
      attempt.promise = this.runAttempt(attempt);
    }
    if (this.minTtr === undefined || jobs.some((j) => (this.ttrMs ?? j.ttrMs) < this.minTtr)) {
      this.minTtr = Math.min(this.minTtr ?? Infinity, ...jobs.map((j) => this.ttrMs ?? j.ttrMs));
      this.beat?.set();
    }
  }

  async runAttempt(a) {
    const { topic: t, job } = a;
    if (a.cancelled) {
      try {
        await this.release(a, 0, CANCELLED_ERROR);
      } finally {
        this.ended(a);
      }
      return;
    }
    a.started = true;
    try {
      const result = await t.handler(job, { get signal() { return controller(a).signal; } });
      if (a.cancelled) {
        // It finished anyway: its result is not applied. Acked, a replaced job's old attempt
        // was recorded as done with its result.
        await this.release(a, 0, CANCELLED_ERROR);
      } else if (a.lost) {
        this.log.warn(`redisched worker: job ${job.id} of ${t.name} finished after its reservation was lost; not acked`);
      } else if (result !== KEEP) {
        if (!t.done.length) t.doneSince = Date.now();
        t.done.push({ id: job.id, token: job.token, result: this.encodeResult(result, job) });
      }
    } catch (err) {
      if (a.cancelled) await this.release(a, 0, CANCELLED_ERROR); // a replace's new version: at once
      else if (err instanceof Retry) await this.release(a, err.delayMs, err.reason);
      else await this.release(a, t.backoff.delayMs(job.attempts), describe(err));
    } finally {
      this.ended(a);
    }
  }

  /** The attempt is over: its slot is free. */
  ended(a) {
    const { topic: t, job } = a;
    a.finished = true;
    this.active.delete(a);
    if (t.running.get(job.id) === a) t.running.delete(job.id);
    this.free += 1;
    this.wakeStarved();
    t.kick.set();
    if (!this.active.size && this.stopping) this.idle.set();
  }

  /** A handler's return value as the job's result (results.js); a value JSON cannot encode is
   * kept as its String(), with a warning, as the Python Worker keeps its repr. */
  encodeResult(value, job) {
    try {
      return encodeResult(value);
    } catch {
      this.log.warn(`redisched worker: job ${job.id} of ${job.topic} returned a ${typeof value}, kept as its String()`);
      return Buffer.from(String(value), 'utf8');
    }
  }

  /** A wake message `c<token>:<id>` (`reservation` is what follows the `c`): remember it for a
   * lease not read yet, and cancel the attempt that holds it if it runs. */
  onCancel(t, reservation) {
    const colon = reservation.indexOf(':');
    if (colon < 1 || !/^[0-9]+$/.test(reservation.slice(0, colon))) {
      this.log.warn(`redisched worker: malformed cancel message on the wake channel of ${t.name}`);
      return;
    }
    t.cancelled.add(reservation);
    if (t.cancelled.size > REMEMBERED_CANCELS) t.cancelled.delete(t.cancelled.values().next().value);
    this.cancelRunning(t, reservation.slice(colon + 1), reservation.slice(0, colon));
  }

  /** The job was deleted, replaced, expired or aborted while its handler ran (the wake channel
   * named its reservation, `token`): abort the handler's signal; runAttempt releases the job
   * when it ends. Another attempt of the id (a later lease) goes on. */
  cancelRunning(t, id, token) {
    const a = t.running.get(id);
    if (a === undefined || a.job.token !== token || a.cancelled || a.finished) return;
    a.cancelled = true;
    controller(a).abort(new Cancelled());
    this.log.info(`redisched worker: job ${id} of ${t.name}: cancelled while running`);
  }

  /**
   * Give the job back after delayMs; a job whose handler never started gets its attempt back, and
   * so does one cut short by the stop (`refund`): stopping a worker never uses up max_attempts.
   */
  async release(a, delayMs, error, refund = false) {
    const { job } = a;
    if (a.lost) {
      if (a.cancelled) return; // its touch found it deleted: expected
      this.log.warn(`redisched worker: job ${job.id} of ${job.topic} failed after its reservation was lost`);
      return;
    }
    a.lost = true; // released: a late end of the handler changes nothing
    try {
      // a handler's error may hold a lone surrogate (release refuses it): as U+FFFD instead
      const text = a.started ? String(error).toWellFormed() : '';
      const state = await this.scheduler.release(job, { delayMs, error: text, unstarted: refund || !a.started });
      if (a.cancelled) {
        this.log.info(`redisched worker: job ${job.id} of ${job.topic}: cancelled attempt released (${state})`);
      } else if (state === 'dead') {
        this.log.error(`redisched worker: job ${job.id} of ${job.topic} is dead after ${job.attempts} attempts: ${error.split('\n')[0]}`);
      } else if (refund) {
        this.log.info(`redisched worker: job ${job.id} of ${job.topic}: given back (${error}), its attempt not counted`);
      } else {
        this.log.info(`redisched worker: job ${job.id} of ${job.topic}: attempt ${job.attempts} failed; next in ${delayMs} ms`);
      }
    } catch (err) {
      if (err instanceof StaleReservation) {
        if (a.cancelled) return; // deleted, aborted or expired: expected
        this.log.warn(`redisched worker: job ${job.id} of ${job.topic}: release rejected, the reservation was lost`);
      } else {
        this.log.warn(`redisched worker: could not release job ${job.id} of ${job.topic} (${err.message}); it returns after its ttr`);
      }
    }
  }

  async shutdown(loops) {
    const deadline = Date.now() + this.graceMs;
    const left = () => deadline - Date.now();
    const force = this.force.wait(null);
    await Promise.race([Promise.allSettled(loops), this.force.wait(left())]);
    const unstarted = [...this.active].filter((a) => !a.started);
    await Promise.all(unstarted.map((a) => this.release(a, 0, '').then(() => this.active.delete(a))));
    if ([...this.active].length) await Promise.race([this.idle.wait(left()), force]);
    const unfinished = [...this.active].filter((a) => !a.finished && !a.lost);
    if (unfinished.length) {
      this.log.warn(`redisched worker: releasing ${unfinished.length} jobs that did not finish in time`);
      unfinished.forEach((a) => controller(a).abort(new Error(STOPPED_ERROR)));
      await Promise.all(unfinished.map((a) => this.release(a, 0, STOPPED_ERROR, true)));
    }
    await Promise.all(this.topics.map((t) => this.flushAcks(t)));
  }

  // -- keeping long reservations ---------------------------------------------------------------

  /** Extend the reservation of every handler that has run for half its ttr. */
  heartbeat() {
    this.beat = new Kick();
    let on = true;
    (async () => {
      while (on) {
        this.beat.clear();
        await this.beat.wait(Math.min(1000, Math.max(10, (this.minTtr ?? 4000) / 4)));
        const now = Date.now();
        for (const a of this.active) {
          if (!on || !a.started || a.finished || a.lost || a.touchAt > now) continue;
          a.touchAt = now + a.ttr / 2;
          this.scheduler.touch(a.job, { ttrMs: this.ttrMs ?? '' }).catch((err) => {
            if (!(err instanceof StaleReservation)) {
              a.touchAt = Date.now(); // try again on the next tick
              return;
            }
            if (a.finished) return;
            a.lost = true;
            if (a.cancelled) return; // its signal was aborted already
            controller(a).abort(new StaleReservation('the reservation was lost'));
            this.log.warn(`redisched worker: job ${a.job.id} of ${a.job.topic} lost its reservation while running`);
          });
        }
      }
    })();
    return { stop: () => { on = false; this.beat.set(); } };
  }
}

module.exports = { Worker, Backoff, Retry, Cancelled, KEEP, Kick, MAX_IDLE_MS, MAX_CONCURRENCY };
