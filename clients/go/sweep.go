package redisched

import (
	"sync"
	"time"
)

// sweepInterval is the least time between two requeues that Reserve runs first on one topic.
const sweepInterval = time.Second

// sweeps remembers when each topic's Reserve last requeued its timed-out reservations.
type sweeps struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// sweepDue says whether a Reserve of topic requeues first: at most once per sweepInterval per
// topic. A consumer that only calls Reserve runs no requeue loop (a Worker and the servers
// do), so without it a job whose holder died stayed reserved until something else requeued it.
// A client on its own Clock (a test that moves time) never sweeps, so that what it sees does
// not depend on how fast it runs.
func (c *Client) sweepDue(topic string) bool {
	if c.Clock != nil {
		return false
	}
	now := time.Now()
	c.sweeps.mu.Lock()
	defer c.sweeps.mu.Unlock()
	if last, ok := c.sweeps.last[topic]; ok && now.Sub(last) < sweepInterval {
		return false
	}
	if c.sweeps.last == nil || len(c.sweeps.last) >= 10_000 {
		c.sweeps.last = make(map[string]time.Time)
	}
	c.sweeps.last[topic] = now
	return true
}
