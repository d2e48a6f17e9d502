package redisched

// Stopping and keeping leases: the grace period after Stop, and the heartbeat that touches
// handlers running past half their ttr.

import (
	"context"
	"errors"
	"sync"
	"time"
)

func (w *Worker) shutdown(loops *sync.WaitGroup) {
	deadline := time.After(w.opts.Grace)
	loopsDone := make(chan struct{})
	go func() { loops.Wait(); close(loopsDone) }()
	select {
	case <-loopsDone:
	case <-deadline:
	case <-w.force:
	}
	w.mu.Lock()
	var unstarted []*attempt
	for a := range w.active {
		if !a.started {
			unstarted = append(unstarted, a)
		}
	}
	w.mu.Unlock()
	for _, a := range unstarted {
		w.release(a, 0, "")
		w.mu.Lock()
		delete(w.active, a)
		w.mu.Unlock()
	}
	w.mu.Lock()
	if len(w.active) == 0 {
		closeOnce(w.idle)
	}
	w.mu.Unlock()
	select {
	case <-w.idle:
	case <-deadline:
	case <-w.force:
	}
	w.mu.Lock()
	var unfinished []*attempt
	for a := range w.active {
		if !a.finished && !a.lost {
			unfinished = append(unfinished, a)
		}
	}
	w.mu.Unlock()
	if len(unfinished) > 0 {
		w.log.Printf("redisched worker: releasing %d jobs that did not finish in time", len(unfinished))
	}
	for _, a := range unfinished {
		a.cancel()
		w.releaseWith(a, 0, StoppedError, true)
	}
	for _, t := range w.topics {
		w.flushAcks(t)
	}
}

// -- keeping long reservations ---------------------------------------------------------------

// heartbeat extends the reservation of every handler that has run for half its ttr.
func (w *Worker) heartbeat(stop chan struct{}) {
	for {
		w.mu.Lock()
		tick := w.minTTR / 4
		w.mu.Unlock()
		if tick > time.Second {
			tick = time.Second
		}
		if tick < 10*time.Millisecond {
			tick = 10 * time.Millisecond
		}
		select {
		case <-stop:
			return
		case <-time.After(tick):
		}
		now := time.Now()
		var due []*attempt
		w.mu.Lock()
		for a := range w.active {
			if a.started && !a.finished && !a.lost && !a.touchAt.After(now) {
				a.touchAt = now.Add(a.ttr / 2)
				due = append(due, a)
			}
		}
		w.mu.Unlock()
		for _, a := range due {
			go w.touch(a)
		}
	}
}

func (w *Worker) touch(a *attempt) {
	_, err := w.client.Touch(context.Background(), a.job, w.opts.TTRMs)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case errors.Is(err, ErrStale):
		if !a.finished {
			a.lost = true
			a.cancel()
			if a.cancelled { // its ctx was cancelled already
				return
			}
			w.log.Printf("redisched worker: job %q of %s lost its reservation while running", a.job.ID, a.job.Topic)
		}
	case err != nil:
		a.touchAt = time.Now() // try again on the next tick
	}
}
