package redisched

// The Go worker: lease due jobs, run their handlers, ack or release them.
//
// The same loop as the Python Worker (src/redisched/worker.py) and the Node one, on the same
// scripts. Per topic one goroutine talks to Redis: each round trip acks the jobs finished since
// the last one and leases as many new ones as there are free slots (a pipeline of ack.lua and
// reserve.lua). A topic with nothing due sleeps until the lease's next_due_ms or
// next_timeout_ms (server time) or a message on its wake channel: no polling. A reservation
// deadline that passes (a worker died) makes the loop run requeue.lua. A running job deleted,
// replaced, expired or aborted is announced on the same channel (`c<token>:<id>`, the
// reservation taken away): the ctx of the handler holding that token is cancelled at once, and
// when the handler returns, whatever it returns, the job is released, never acked (stale for a
// delete, an abort or an expiry; a replace's new version is scheduled at once). A cancel read
// before the reply of the lease that took the job is remembered (the last rememberedCancels of
// each topic): that job is released unstarted.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"math/rand"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	maxLease = 1000
	// MaxIdle is how long an idle topic sleeps at most, in case a wake-up message was lost.
	MaxIdle    = 10 * time.Second
	ackDelay   = 5 * time.Millisecond
	maxErrText = 4000
	// StoppedError is the last_error of a job whose handler outlived the grace period (its
	// attempt is given back: the stop cut it short, not the job).
	StoppedError = "the worker stopped before the handler finished"
	// cancelledError is the error a cancelled attempt is released with.
	cancelledError = "cancelled: the job was deleted, replaced, expired or aborted while running"
)

// Handler runs one job. Returning nil acks it; ErrKeep leaves it reserved (someone else acks or
// releases it with the token); any other error releases it with backoff (a *RetryError picks
// the delay), and a job whose max_attempts are used up goes dead with the error as its
// last_error. ctx is cancelled when the grace period after a stop ends, the reservation is
// lost, or the job is deleted, replaced, expired or aborted while the handler runs (the
// attempt is then released whatever the handler returns, never acked). A handler that has a
// result to keep is a ResultHandler wrapped with Returning.
type Handler func(ctx context.Context, job *Job) error

// ResultHandler runs one job as a Handler does; on success its result is kept as the job's
// result (EncodeResult: []byte and string as they are, nil as none, other values as JSON; one
// that cannot be encoded is kept as its fmt %v text, with a warning).
type ResultHandler func(ctx context.Context, job *Job) (result any, err error)

// Returning makes a Handler of a ResultHandler: the Worker keeps what it returns.
func Returning(h ResultHandler) Handler {
	return func(ctx context.Context, job *Job) error {
		result, err := h(ctx, job)
		job.returned = result
		return err
	}
}

// ErrKeep, returned by a handler, leaves its job reserved.
var ErrKeep = errors.New("redisched: keep the reservation")

// RetryError asks for the job to run again after Delay (the attempt still counts).
type RetryError struct {
	Delay  time.Duration
	Reason string
}

func (e *RetryError) Error() string {
	if e == nil {
		return nilRetry
	}
	return fmt.Sprintf("%s (in %s)", e.Reason, e.Delay)
}

// nilRetry is the error of a nil *RetryError returned as a (non-nil) error.
const nilRetry = "redisched: a nil *RetryError was returned (no delay to retry in)"

// Retry is the error a handler returns to run its job again after delay. A delay outside 0 to a
// century is an *InvalidArgument instead (as the Python Retry raises), which fails the job with
// backoff, its message kept as the job's last error.
func Retry(delay time.Duration, reason string) error {
	retry := &RetryError{delay, reason}
	if err := retry.check(); err != nil {
		return err
	}
	return retry
}

// check is the *InvalidArgument Retry gives for the delay or the reason (as Python's
// validate.text), nil when both are fine. A
// hand-built *RetryError with a bad delay fails its job as that error would (with backoff,
// its message kept as the job's last error), as Retry's own check does; so does a nil one.
func (e *RetryError) check() error {
	if e == nil { // a handler's typed nil: fails its job with backoff, as any error
		return errors.New(nilRetry)
	}
	if e.Delay < 0 || e.Delay.Milliseconds() > maxDelayMs {
		return invalidArg("delay", "must be from 0 to %d ms, not %s", int64(maxDelayMs), e.Delay)
	}
	return checkText(e.Reason, "reason") // as ReleaseJob checks it: a refused release would strand the job
}

// Backoff is exponential backoff with jitter: attempt n waits min(Max, Base*2^(n-1)), minus up to
// Jitter of it at random.
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64
}

// DefaultBackoff is 1 s after the first failure, doubling up to an hour, 20% jitter.
var DefaultBackoff = Backoff{time.Second, time.Hour, 0.2}

// Delay is the wait after attempt (1 = the first run), with jitter.
func (b Backoff) Delay(attempt int64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	ceiling := math.Min(float64(b.Max), float64(b.Base)*math.Pow(2, math.Min(float64(attempt-1), 64)))
	return time.Duration(ceiling * (1 - b.Jitter*rand.Float64()))
}

// MaxConcurrency is the most handlers a Worker runs at once.
const MaxConcurrency = 10000

// Options of a Worker; zero values mean the defaults.
type Options struct {
	Concurrency   int           // handlers running at once across all topics (default 50)
	TTRMs         int64         // each lease's length (0: each job's own ttr)
	Backoff       *Backoff      // retry delays (nil: the topic's backoff_ms/backoff_max_ms, else DefaultBackoff)
	Grace         time.Duration // how long running handlers may finish after Stop (default 30 s)
	IgnoreSignals bool          // do not stop on SIGTERM/SIGINT
	Logger        *log.Logger   // default: log.Default()
	OnReady       func()        // called once subscribed to the wake channels
}

type topicState struct {
	name      string
	handler   Handler
	backoff   Backoff
	kick      chan struct{}
	done      []*Job
	doneSince time.Time
	requeueAt int64 // server ms, 0: none
	saturated bool
	running   map[string]*attempt // by job id, the attempts whose handler was started (w.mu)
	// the reservations ("<token>:<id>") whose cancel was read, the last rememberedCancels of
	// them, oldest first (w.mu): a lease read after its cancel starts no handler
	cancelled    map[string]struct{}
	cancelledLog []string
}

// rememberedCancels is how many cancelled reservations each topic keeps for a lease whose reply
// is read after them (it is read within a round trip of the cancel).
const rememberedCancels = 10000

type attempt struct {
	job       *Job
	topic     *topicState
	ttr       time.Duration
	touchAt   time.Time
	started   bool
	finished  bool
	lost      bool
	cancelled bool // the job was deleted, replaced, expired or aborted while its handler ran
	cancel    context.CancelFunc
}

// Worker runs handlers for the due jobs of one or more topics.
type Worker struct {
	client *Client
	topics []*topicState
	opts   Options
	log    *log.Logger

	mu       sync.Mutex
	free     int
	active   map[*attempt]struct{}
	starved  map[*topicState]struct{}
	offsetMs int64
	minTTR   time.Duration
	stopping bool
	stopped  chan struct{}
	force    chan struct{}
	idle     chan struct{}
	handlers sync.WaitGroup
}

// NewWorker checks the handlers and options; Run serves.
func NewWorker(client *Client, handlers map[string]Handler, o Options) (*Worker, error) {
	if len(handlers) == 0 {
		return nil, errors.New("redisched: handlers: must map at least one topic to a handler")
	}
	if o.Concurrency == 0 {
		o.Concurrency = 50
	}
	if o.Concurrency < 1 || o.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("redisched: Concurrency: must be from 1 to %d", MaxConcurrency)
	}
	if err := checkRange(o.TTRMs, "TTRMs", 0, maxTTRMs); err != nil {
		return nil, err
	}
	if o.Grace < 0 {
		return nil, invalidArg("Grace", "must not be negative")
	}
	if o.Grace == 0 {
		o.Grace = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = log.Default()
	}
	w := &Worker{client: client, opts: o, log: o.Logger, active: map[*attempt]struct{}{},
		starved: map[*topicState]struct{}{}, minTTR: time.Hour}
	for name, h := range handlers {
		if err := checkTopic(name); err != nil {
			return nil, fmt.Errorf("redisched: handlers[%q]: %w", name, err)
		}
		if h == nil {
			return nil, fmt.Errorf("redisched: handlers[%q]: nil", name)
		}
		w.topics = append(w.topics, &topicState{name: name, handler: h, kick: make(chan struct{}, 1),
			running: map[string]*attempt{}, cancelled: map[string]struct{}{}})
	}
	return w, nil
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// Stop stops gracefully; a second call cuts the grace period short. Safe from any goroutine.
func (w *Worker) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped == nil {
		w.stopping = true
		return
	}
	if w.stopping {
		closeOnce(w.force)
	}
	w.stopping = true
	closeOnce(w.stopped)
	for _, t := range w.topics {
		kick(t.kick)
	}
}

func (w *Worker) isStopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping
}

// Run serves the topics until Stop, SIGTERM/SIGINT or ctx ends; then stops gracefully.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.stopped != nil {
		w.mu.Unlock()
		return errors.New("redisched: this worker is already running")
	}
	w.stopped, w.force, w.idle = make(chan struct{}), make(chan struct{}), make(chan struct{})
	w.free = w.opts.Concurrency
	if w.stopping {
		close(w.stopped)
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.stopped, w.stopping = nil, false
		w.mu.Unlock()
	}()
	for _, t := range w.topics {
		// a partitioned topic's jobs live in its partitions, which this worker does not route
		// to: its every lease would fail (serve the partitions' names, <topic>~p<i>, instead)
		if count, err := w.client.partitionCount(ctx, t.name); err != nil {
			return err
		} else if count > 0 {
			return topicPartitioned(t.name, count)
		}
		t.backoff = DefaultBackoff
		if w.opts.Backoff != nil {
			t.backoff = *w.opts.Backoff
		} else if b, err := w.client.TopicBackoff(ctx, t.name); err != nil {
			return err
		} else {
			t.backoff = b
		}
	}
	wake, err := w.client.subscribeWake(ctx, w.topics, w.cancelRunning)
	if err != nil {
		return err
	}
	defer wake.close()
	if !w.opts.IgnoreSignals {
		signals := make(chan os.Signal, 2)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(signals)
		go func() {
			for range signals {
				w.log.Print("redisched worker: signal: stopping (send it again to skip the grace period)")
				w.Stop()
			}
		}()
	}
	stopped := w.stopped
	go func() {
		select {
		case <-ctx.Done():
			w.Stop()
		case <-stopped:
		}
	}()
	beat := make(chan struct{})
	go w.heartbeat(beat)
	defer close(beat)
	var loops sync.WaitGroup
	for _, t := range w.topics {
		loops.Add(1)
		go func(t *topicState) {
			defer loops.Done()
			w.topicLoop(t)
		}(t)
	}
	if w.opts.OnReady != nil {
		w.opts.OnReady()
	}
	<-stopped
	w.shutdown(&loops)
	return nil
}

func (w *Worker) serverNow() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Now().UnixMilli() + w.offsetMs
}

// -- leasing ---------------------------------------------------------------------------------

func (w *Worker) topicLoop(t *topicState) {
	failures := 0
	for !w.isStopping() {
		if err := w.step(t); err != nil {
			failures++
			pause := time.Duration(math.Min(float64(50*time.Millisecond)*math.Pow(2, float64(failures)), float64(5*time.Second)))
			w.log.Printf("redisched worker: topic %s: %v; retrying in %s", t.name, err, pause)
			select {
			case <-w.stopped:
			case <-time.After(pause):
			}
			continue
		}
		failures = 0
	}
}

func (w *Worker) sleepUntil(t *topicState, d time.Duration) {
	if d > MaxIdle {
		d = MaxIdle
	}
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.kick:
	case <-timer.C:
	}
}

// step is one round trip: requeue if a reservation timed out, else ack + lease (+ sleep).
func (w *Worker) step(t *topicState) error {
	select { // from here on, a wake-up (or a finished job) ends the next sleep
	case <-t.kick:
	default:
	}
	if t.requeueAt != 0 && w.serverNow() >= t.requeueAt {
		return w.requeue(t)
	}
	w.mu.Lock()
	count := w.free
	if count > maxLease {
		count = maxLease
	}
	refillAt := w.opts.Concurrency / 10
	if refillAt < 1 {
		refillAt = 1
	}
	if count <= 0 || (count < refillAt && t.saturated && len(w.active) > 0) {
		// Few free slots while more jobs wait: let finished jobs gather a while, so that one
		// round trip acks and refills many. Acks wait ackDelay at most.
		if len(t.done) == 0 || time.Now().Before(t.doneSince.Add(ackDelay)) {
			w.starved[t] = struct{}{}
			wait := MaxIdle
			if len(t.done) > 0 {
				wait = time.Until(t.doneSince.Add(ackDelay))
			}
			w.mu.Unlock()
			w.sleepUntil(t, wait)
			return nil
		}
		if count <= 0 {
			w.mu.Unlock()
			w.flushAcks(t)
			return nil
		}
	}
	done := t.done
	t.done = nil
	w.free -= count
	w.mu.Unlock()
	sent := time.Now()
	lease, acked, err := w.client.AckAndLease(context.Background(), t.name, done, int64(count), w.opts.TTRMs)
	w.mu.Lock()
	if err != nil {
		w.free += count
		t.done = append(done, t.done...) // acked again later: a token is never applied twice
		w.mu.Unlock()
		return err
	}
	w.offsetMs = lease.NowMs - (sent.UnixMilli()+time.Now().UnixMilli())/2
	w.free += count - len(lease.Jobs)
	if w.free > 0 {
		w.wakeStarvedLocked()
	}
	w.mu.Unlock()
	for i, ok := range acked {
		if !ok {
			w.log.Printf("redisched worker: job %q of %s: ack rejected, the reservation was lost", done[i].ID, t.name)
		}
	}
	t.saturated = len(lease.Jobs) == int(count)
	if len(lease.Jobs) > 0 {
		w.dispatch(t, lease.Jobs)
	}
	t.requeueAt = lease.NextTimeoutMs
	if t.requeueAt != 0 && t.requeueAt <= lease.NowMs {
		return w.requeue(t)
	}
	if !t.saturated {
		due := lease.NextDueMs
		if due != 0 && due <= lease.NowMs {
			due = 0 // due yet nothing leased: the topic is paused
		}
		wait := MaxIdle
		for _, at := range []int64{due, t.requeueAt} {
			if at != 0 {
				if d := time.Duration(at-w.serverNow()) * time.Millisecond; d < wait {
					wait = d
				}
			}
		}
		if wait <= 0 {
			wait = time.Millisecond
		}
		w.sleepUntil(t, wait)
	}
	return nil
}

func (w *Worker) requeue(t *topicState) error {
	// Its cancel messages name the ended reservations' tokens: read after the next lease took
	// those ids again, they leave the new attempts alone.
	next, _, err := w.client.requeue(context.Background(), t.name, 1000)
	if err != nil {
		return err
	}
	t.requeueAt = next
	return nil
}

func (w *Worker) wakeStarvedLocked() {
	for t := range w.starved {
		kick(t.kick)
	}
	w.starved = map[*topicState]struct{}{}
}

func (w *Worker) flushAcks(t *topicState) {
	w.mu.Lock()
	done := t.done
	t.done = nil
	w.mu.Unlock()
	if len(done) == 0 {
		return
	}
	acked, err := w.client.AckMany(context.Background(), t.name, done)
	if err != nil {
		w.log.Printf("redisched worker: could not ack %d jobs of %s (%v); they return after their ttr", len(done), t.name, err)
	}
	for i, ok := range acked {
		if !ok {
			w.log.Printf("redisched worker: job %q of %s: ack rejected, the reservation was lost", done[i].ID, t.name)
		}
	}
}

// -- running handlers ------------------------------------------------------------------------

func (w *Worker) dispatch(t *topicState, jobs []*Job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, job := range jobs {
		ttrMs := job.TTRMs
		if w.opts.TTRMs != 0 {
			ttrMs = w.opts.TTRMs
		}
		ttr := time.Duration(ttrMs) * time.Millisecond
		if ttr < w.minTTR {
			w.minTTR = ttr
		}
		a := &attempt{job: job, topic: t, ttr: ttr, touchAt: now.Add(ttr / 2)}
		w.active[a] = struct{}{}
		// Leased during a stop: handed to no one, so released with the attempt refunded.
		if w.stopping {
			continue
		}
		if _, ok := t.cancelled[job.Token+":"+job.ID]; ok {
			// its cancel was read before this lease's reply: released unstarted
			a.cancelled = true
			w.handlers.Add(1)
			go w.dropAttempt(a)
			continue
		}
		a.started = true
		ctx, cancel := context.WithCancel(context.Background())
		a.cancel = cancel
		t.running[job.ID] = a
		w.handlers.Add(1)
		go w.runAttempt(ctx, a)
	}
}

func describe(err error) string {
	text := err.Error()
	if len(text) > maxErrText {
		text = "..." + text[len(text)-maxErrText:]
	}
	return text
}

// dropAttempt releases an attempt cancelled before its handler started (unstarted).
func (w *Worker) dropAttempt(a *attempt) {
	defer w.handlers.Done()
	w.release(a, 0, cancelledError)
	w.ended(a)
}

func (w *Worker) runAttempt(ctx context.Context, a *attempt) {
	defer w.handlers.Done()
	t, job := a.topic, a.job
	err := safeCall(ctx, t.handler, job)
	a.cancel()
	w.mu.Lock()
	cancelled, lost := a.cancelled, a.lost
	if !cancelled && !lost && err == nil {
		if len(t.done) == 0 {
			t.doneSince = time.Now()
		}
		job.Result = w.encodeResult(job.returned, job)
		t.done = append(t.done, job)
	}
	w.mu.Unlock()
	var retry *RetryError
	switch {
	case cancelled:
		// Whatever it returned, its result is not applied. Acked, a replaced job's old attempt
		// was recorded as done with its result; released, the new version is scheduled at once.
		w.release(a, 0, cancelledError)
	case err == nil || errors.Is(err, ErrKeep):
		if lost {
			w.log.Printf("redisched worker: job %q of %s finished after its reservation was lost; not acked", job.ID, t.name)
		}
	case errors.As(err, &retry) && retry.check() == nil:
		w.release(a, retry.Delay, retry.Reason)
	case retry != nil:
		w.release(a, t.backoff.Delay(job.Attempts), describe(retry.check()))
	default:
		w.release(a, t.backoff.Delay(job.Attempts), describe(err))
	}
	w.ended(a)
}

// ended frees the attempt's slot.
func (w *Worker) ended(a *attempt) {
	t, job := a.topic, a.job
	w.mu.Lock()
	a.finished = true
	delete(w.active, a)
	if t.running[job.ID] == a {
		delete(t.running, job.ID)
	}
	w.free++
	w.wakeStarvedLocked()
	if len(w.active) == 0 && w.stopping {
		closeOnce(w.idle)
	}
	w.mu.Unlock()
	kick(t.kick)
}

// cancelRunning acts on the wake channel's cancel message: the reservation token of the job was
// taken away (deleted, replaced, expired or aborted). It is remembered for a lease not read yet;
// the ctx of a handler running with that token is cancelled, and runAttempt releases the job
// when the handler returns. Another attempt of the id (a later lease) goes on.
func (w *Worker) cancelRunning(t *topicState, token, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := token + ":" + id
	if _, ok := t.cancelled[key]; !ok {
		t.cancelled[key] = struct{}{}
		t.cancelledLog = append(t.cancelledLog, key)
		if len(t.cancelledLog) > rememberedCancels {
			delete(t.cancelled, t.cancelledLog[0])
			t.cancelledLog = t.cancelledLog[1:]
		}
	}
	a := t.running[id]
	if a == nil || a.job.Token != token || a.cancelled || a.finished {
		return
	}
	a.cancelled = true
	a.cancel()
}

// safeCall runs a handler; a panic is its error.
func safeCall(ctx context.Context, h Handler, job *Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h(ctx, job)
}

// encodeResult is a handler's return value as the job's result; a value encoding/json cannot
// encode is kept as its %v text, as the Python Worker keeps its repr.
func (w *Worker) encodeResult(value any, job *Job) []byte {
	data, err := EncodeResult(value)
	if err != nil {
		w.log.Printf("redisched worker: job %q of %s returned a %T, kept as its %%v text", job.ID, job.Topic, value)
		return []byte(fmt.Sprint(value))
	}
	return data
}

// release gives the job back after delay; a job whose handler never started gets its attempt back.
func (w *Worker) release(a *attempt, delay time.Duration, errText string) {
	w.releaseWith(a, delay, errText, false)
}

// releaseWith is release; refund also gives back the attempt of a started handler that the
// worker's stop cut short, so that stopping a worker never uses up a job's max_attempts.
func (w *Worker) releaseWith(a *attempt, delay time.Duration, errText string, refund bool) {
	w.mu.Lock()
	lost, started, cancelled := a.lost, a.started, a.cancelled
	a.lost = true // released: a late end of the handler changes nothing
	w.mu.Unlock()
	job := a.job
	if lost {
		if cancelled { // its touch found it deleted: expected
			return
		}
		w.log.Printf("redisched worker: job %q of %s failed after its reservation was lost", job.ID, job.Topic)
		return
	}
	if !started {
		errText = ""
	}
	// a handler's error may hold bytes that are not UTF-8 (a file name): ReleaseJob refuses them
	errText = strings.ToValidUTF8(errText, "\uFFFD")
	state, err := w.client.ReleaseJob(context.Background(), job, delay.Milliseconds(), errText, refund || !started)
	switch {
	case errors.Is(err, ErrStale):
		if cancelled { // deleted, aborted or expired: expected
			return
		}
		w.log.Printf("redisched worker: job %q of %s: release rejected, the reservation was lost", job.ID, job.Topic)
	case err != nil:
		w.log.Printf("redisched worker: could not release job %q of %s (%v); it returns after its ttr", job.ID, job.Topic, err)
	case state == "dead":
		w.log.Printf("redisched worker: job %q of %s is dead after %d attempts: %s", job.ID, job.Topic, job.Attempts, strings.SplitN(errText, "\n", 2)[0])
	}
}
