// Types of the redisched Node.js glue (index.js).
import type { Cluster, Redis } from 'ioredis';
import type { Server } from 'node:http';

export type RedisLike = Redis | Cluster;

/** A job as get.lua / reserve.lua return it. Times are epoch milliseconds. */
export interface Job {
  topic: string;
  id: string;
  state: 'scheduled' | 'ready' | 'reserved' | 'dead';
  version: number;
  attempts: number;
  priority: number;
  ttrMs: number;
  maxAttempts: number | null;
  runAtMs: number;
  /** Set on a job from reserve/lease: present it to ack, release, touch and bury. */
  token: string | null;
  reservedUntilMs: number | null;
  lastError: string | null;
  body: Buffer;
  pendingVersion: number | null;
}

/** Enough of a job to ack, release, touch or bury it. */
export interface Reservation {
  topic: string;
  id: string;
  token: string | null;
}

export interface Lease {
  nowMs: number;
  /** run_at of the earliest scheduled job, null when none. */
  nextDueMs: number | null;
  /** The earliest reservation deadline, null when none. */
  nextTimeoutMs: number | null;
  jobs: Job[];
}

export interface PutOptions {
  /** Due after delayMs, or at runAtMs: not both (InvalidArgument `delayMs`). */
  delayMs?: number;
  runAtMs?: number | '';
  ttrMs?: number | '';
  priority?: number;
  maxAttempts?: number | '';
  replace?: boolean;
  ifVersion?: number | '';
}

export interface TopicStats {
  nowMs: number; scheduled: number; ready: number; reserved: number; dead: number;
  paused: number; nextDueMs: number; totalPut: number; totalReserved: number;
  totalAcked: number; totalReleased: number; totalRequeued: number; totalDead: number;
  totalPulled: number; finishedDone: number; finishedCancelled: number; finishedDead: number;
  finishedPulled: number; finishedAborted: number;
}

export class RedischedError extends Error {}
/** The token no longer holds the job: it was requeued, re-reserved, deleted or acked. */
export class StaleReservation extends RedischedError {}
/** if_version did not match the job's current version (0: no such job). */
export class VersionConflict extends RedischedError {
  current: number;
}

/** A bad argument (nothing was sent); `field` names it. */
export class InvalidArgument extends TypeError {
  field: string;
}

/** A put, schedule or delete by id named a partitioned topic itself (Redis stored nothing), or
 * a read of it found nothing (get, getSchedule, reserve, lease, ackAndLease, pull; stats and
 * schedules always): its jobs live in their ids' partitions; `count` is how many. A Worker
 * refuses such a topic at run(). */
export class TopicPartitioned extends InvalidArgument {
  topic: string;
  count: number;
}

/** What a result may be: bytes and strings as they are, null for none, anything else as JSON. */
export type Result = Buffer | Uint8Array | string | null | undefined | unknown;

export interface ScheduleOptions {
  /** A 5-field crontab expression, read in `tz`; give it or everyMs. */
  cron?: string | null;
  /** An interval of whole seconds, in ms. */
  everyMs?: number | null;
  /** An IANA time zone name (default 'UTC'). */
  tz?: string;
  startAtMs?: number | Date | null;
  endAtMs?: number | Date | null;
  ttrMs?: number | null;
  priority?: number;
  maxAttempts?: number | null;
  ifVersion?: number | null;
}

/** A recurring schedule, as get_schedule.lua reads it (times in epoch ms, null: none). */
export interface Schedule {
  topic: string;
  id: string;
  version: number;
  cron: string | null;
  everyMs: number | null;
  tz: string;
  nextRunAtMs: number | null;
  startAtMs: number | null;
  endAtMs: number | null;
  lastRunAtMs: number | null;
  priority: number;
  ttrMs: number;
  maxAttempts: number | null;
  body: Buffer;
}

/** One method per script. */
export class Scheduler {
  constructor(redis: RedisLike, options?: { prefix?: string; dir?: string; clock?: (() => number) | null; maxBodySize?: number });
  readonly redis: RedisLike;
  readonly prefix: string;
  call(name: string, topic: string, named?: Record<string, unknown>, options?: { buffers?: boolean }): Promise<any>;
  pipeline(topic: string, steps: Array<[string, Record<string, unknown>, boolean] | { command: Array<string | number> }>): Promise<any[]>;
  put(topic: string, id: string, body: string | Buffer, options?: PutOptions): Promise<{ status: 'created' | 'exists' | 'replaced' | 'pending'; version: number }>;
  get(topic: string, id: string): Promise<Job | null>;
  delete(topic: string, id: string, options?: { ifVersion?: number | '' }): Promise<boolean>;
  /** A delete whose history says aborted, with `reason` in its aborted event; true if the job existed. */
  abort(topic: string, id: string, options?: { reason?: string | null }): Promise<boolean>;
  reserve(topic: string, options?: { count?: number; ttrMs?: number | '' }): Promise<Job[]>;
  lease(topic: string, options?: { count?: number; ttrMs?: number | '' }): Promise<Lease>;
  ackAndLease(topic: string, done: Array<Reservation & { result?: Buffer | string }>, count: number, options?: { ttrMs?: number | '' }): Promise<Lease & { acked: boolean[] }>;
  ackMany(topic: string, done: Array<Reservation & { result?: Buffer | string }>): Promise<boolean[]>;
  ack(job: Reservation, result?: Result): Promise<void>;
  release(job: Reservation, options?: { delayMs?: number; error?: string; unstarted?: boolean }): Promise<'scheduled' | 'ready' | 'dead'>;
  touch(job: Reservation, options?: { ttrMs?: number | '' }): Promise<number>;
  bury(job: Reservation, options?: { reason?: string }): Promise<void>;
  kick(topic: string, id?: string, options?: { limit?: number }): Promise<number>;
  requeue(topic: string, options?: { limit?: number }): Promise<[number, number, number]>;
  pull(topic: string): Promise<Job | null>;
  stats(topic: string): Promise<TopicStats>;
  /** List a topic in the topics set (what put, schedule and pause do); a bad topic, or one named "." or "..", throws InvalidArgument. */
  register(topic: string): Promise<void>;
  pause(topic: string): Promise<boolean>;
  resume(topic: string): Promise<boolean>;
  topicBackoff(topic: string): Promise<{ baseMs: number | null; maxMs: number | null }>;
  wakeChannel(topic: string): string;
  schedule(topic: string, id: string, body: string | Buffer, options: ScheduleOptions): Promise<Schedule>;
  getSchedule(topic: string, id: string): Promise<Schedule | null>;
  schedules(topic: string): Promise<Schedule[]>;
  unschedule(topic: string, id: string, options?: { ifVersion?: number | null }): Promise<boolean>;
  /** Top up the cron times of these schedules (refill.lua); the calls above do it on their own. */
  refill(topic: string, ids: string[]): Promise<void>;
}

/** A result as stored (results.js): '' for none; InvalidArgument when JSON cannot encode it. */
export function encodeResult(value: Result, field?: string): Buffer | '';

/** Returned by a handler: the job stays reserved; someone else acks or releases it with the token. */
export const KEEP: unique symbol;

/** Thrown by a handler to run the job again after delayMs (the attempt still counts); a delayMs
 * outside 0 ms to a century, or a reason that is not a string, throws InvalidArgument instead. */
export class Retry extends Error {
  constructor(delayMs?: number, reason?: string);
  delayMs: number;
  reason: string;
}

export class Backoff {
  constructor(options?: { baseMs?: number; maxMs?: number; jitter?: number });
  delayMs(attempt: number): number;
}

/** The reason of a handler's aborted signal when its job was deleted, replaced, expired or aborted
 * while it ran (the wake channel's cancel message): the attempt is released, never acked. */
export class Cancelled extends Error {
  constructor(message?: string);
}

/** Returning acks the job; the value becomes its result (see Result), KEEP leaves it reserved.
 * `signal` aborts when the job is cancelled (a Cancelled), its reservation is lost (a
 * StaleReservation), or the grace period after stop() ends. */
export type Handler = (job: Job, context: { readonly signal: AbortSignal }) => Result | typeof KEEP | Promise<Result | typeof KEEP>;

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface WorkerOptions {
  /** Handlers running at once across all topics (default 50). */
  concurrency?: number;
  /** Each lease's length (default: each job's own ttr). */
  ttrMs?: number | null;
  /** Retry delays (default: the topic's backoff_ms/backoff_max_ms, else 1 s doubling to 1 h). */
  backoff?: Backoff | null;
  /** How long running handlers may finish after stop() (default 30 s). */
  graceMs?: number;
  /** Stop gracefully on SIGTERM and SIGINT (default true). */
  handleSignals?: boolean;
  logger?: Logger;
  prefix?: string;
  dir?: string;
}

export class Worker {
  constructor(redis: RedisLike | Scheduler, handlers: Record<string, Handler>, options?: WorkerOptions);
  readonly scheduler: Scheduler;
  /** Serve until stop() or a signal; resolves once stopped. */
  run(options?: { onReady?: (() => void) | null }): Promise<void>;
  /** Stop gracefully; a second call cuts the grace period short. */
  stop(): void;
}

/** A webhook's settings: an http(s) URL with a host, at most 2048 characters; at most two
 * secrets of 8 to 512 characters, each giving a key of 16+ bytes; 0 < timeoutMs <= 300000. */
export interface WebhookOptions { url: string; secrets?: string[]; timeoutMs?: number }
/** A Worker handler that POSTs each job to a webhook, signed the Standard Webhooks way. Throws
 * InvalidArgument (`url`, `secrets`, `secrets[i]`, `timeoutMs`) for options the Python service
 * would refuse as a topic's webhook, in its words (checkWebhook). */
export function webhookHandler(options: WebhookOptions): Handler;
/** The options with their defaults, checked as the Python service checks a topic's webhook. Throws
 * InvalidArgument naming the first option refused. */
export function checkWebhook(options: WebhookOptions): Required<WebhookOptions>;
/** Why a webhook URL is refused, in the Python service's words, or null. */
export function webhookUrlProblem(url: unknown): string | null;
/** The field (`secrets` or `secrets[i]`) and the words refusing a webhook's secrets, or null. */
export function secretsProblem(secrets: unknown): [field: string, message: string] | null;
/** Why a delivery timeout (ms) is refused, or null. */
export function timeoutProblem(timeoutMs: unknown): string | null;
export const MAX_URL_LENGTH: number;
export const MAX_SECRETS: number;
export const MAX_TIMEOUT_MS: number;
export function payload(job: Job): string;
export function retryAfterMs(value: string | null | undefined, now?: number): number | null;

export function secretKey(secret: string): Buffer;
/** The shortest HMAC key a signing secret may give (16 bytes). */
export const MIN_SECRET_KEY_BYTES: number;
/** Why a signing secret is refused (a key under 16 bytes, a bad whsec_...), or null. */
export function secretProblem(secret: string): string | null;
export function signature(key: Buffer, msgId: string, timestamp: number, body: Buffer | string): string;
export function signHeaders(msgId: string, body: Buffer | string, keys: Buffer[], timestamp?: number): Record<string, string>;
export function messageId(job: Pick<Job, 'topic' | 'id' | 'version'>): string;

export function toStored(value: unknown, field?: string): Buffer;
export function toJsonText(data: Buffer): string;

export interface ServerOptions {
  /** API tokens, each 16 to 4096 printable characters: when any is given, every route but
   * /healthz answers 401 (`WWW-Authenticate: Bearer realm="redisched"`, the error's field
   * `Authorization`) unless the request sends `Authorization: Bearer <one of them>`. None (the
   * default) serves anyone who can connect: listen on a loopback address only. */
  tokens?: string[];
  /** Host names answered besides IP addresses and `localhost` (a `Host` naming any other is 400
   * `bad_host`: DNS rebinding); `*` answers any. A POST whose `Origin` is not the server's own, or
   * with `Sec-Fetch-Site: cross-site`, is 403 `cross_site` whatever this is. */
  allowedHosts?: string[];
}
/** POST /schedule/{topic}, POST /cancel/{topic}, GET /healthz over a Scheduler; throws
 * `InvalidArgument` (`tokens[i]`) for a refused token. */
export function createServer(scheduler: Scheduler, options?: ServerOptions): Server;

/** The paths served without a token (/healthz). */
export const OPEN_PATHS: ReadonlySet<string>;
/** The shortest API token accepted (16 characters). */
export const MIN_TOKEN_LENGTH: number;
/** Why an API token is refused (under 16 characters, not printable...), or null. */
export function tokenProblem(token: string): string | null;
/** The first refused token as [index, problem], or null. */
export function tokensProblem(tokens: string[]): [number, string] | null;
/** A check of an Authorization header value against the tokens, in constant time over every token. */
export function bearerCheck(tokens: string[]): (header: string | undefined) => boolean;
/** True when host names this machine only (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean;
/** Why serving on host is refused (reachable from other machines, no tokens, not insecure), or null. */
export function exposureProblem(host: string, tokens: string[], insecure: boolean): string | null;
