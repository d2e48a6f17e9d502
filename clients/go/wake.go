package redisched

// The wake-up subscription: the scripts PUBLISH on a topic's wake channel when work appears.

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// WakeChannel is the Pub/Sub channel on which the scripts announce a topic's new work.
func (c *Client) WakeChannel(topic string) string { return c.Key(topic, "wake") }

// cancelPrefix starts a wake message that names a running job to cancel (the rest is its id);
// the scripts' own messages are numbers.
const cancelPrefix = 'x'

type wakeSub struct {
	cancel context.CancelFunc
	done   chan struct{}
	conn   chan *redis.PubSubConn // holds the current connection while nobody uses it

	mu    sync.Mutex
	seq   uint64
	pings map[string]chan struct{} // by PING payload, closed when its PONG is read
}

func (s *wakeSub) close() {
	s.cancel()
	<-s.done
}

// sync returns once every message published before it was called has been handled (a PING
// on the subscription, whose PONG comes after them), or after timeout.
func (s *wakeSub) sync(timeout time.Duration) {
	s.mu.Lock()
	s.seq++
	data := strconv.FormatUint(s.seq, 10)
	pong := make(chan struct{})
	s.pings[data] = pong
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pings, data)
		s.mu.Unlock()
	}()
	var conn *redis.PubSubConn
	select {
	case conn = <-s.conn:
	case <-s.done:
		return
	}
	err := conn.Ping(data)
	s.conn <- conn
	if err != nil {
		return
	}
	select {
	case <-pong:
	case <-s.done:
	case <-time.After(timeout):
	}
}

func (s *wakeSub) pong(data string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pong := s.pings[data]; pong != nil {
		close(pong)
		delete(s.pings, data)
	}
}

// subscribeWake kicks each topic on a message of its wake channel, and every topic after a
// reconnection (messages may have been missed); a cancel message (`x<id>`) goes to onCancel
// instead. Returns once subscribed.
func (c *Client) subscribeWake(ctx context.Context, topics []*topicState,
	onCancel func(t *topicState, id string)) (*wakeSub, error) {
	byChannel := map[string]*topicState{}
	var channels []any
	for _, t := range topics {
		byChannel[c.WakeChannel(t.name)] = t
		channels = append(channels, c.WakeChannel(t.name))
	}
	subscribe := func() (*redis.PubSubConn, error) {
		conn, err := c.subscriberConn(ctx)
		if err != nil {
			return nil, err
		}
		psc := &redis.PubSubConn{Conn: conn}
		if err := psc.Subscribe(channels...); err != nil {
			psc.Close()
			return nil, err
		}
		for range channels { // wait for every confirmation
			switch v := psc.Receive().(type) {
			case error:
				psc.Close()
				return nil, v
			case redis.Subscription:
			}
		}
		return psc, nil
	}
	psc, err := subscribe()
	if err != nil {
		return nil, err
	}
	inner, cancel := context.WithCancel(context.Background())
	sub := &wakeSub{cancel: cancel, done: make(chan struct{}), conn: make(chan *redis.PubSubConn, 1),
		pings: map[string]chan struct{}{}}
	sub.conn <- psc
	current := psc // only the reader below changes it (holding sub.conn)
	go func() {
		<-inner.Done()
		conn := <-sub.conn
		conn.Close()
		sub.conn <- conn
	}()
	go func() {
		defer close(sub.done)
		for {
			switch v := current.Receive().(type) {
			case redis.Message:
				t := byChannel[v.Channel]
				switch {
				case t == nil:
				case len(v.Data) > 0 && v.Data[0] == cancelPrefix:
					onCancel(t, string(v.Data[1:]))
				default:
					kick(t.kick)
				}
			case redis.Pong:
				sub.pong(v.Data)
			case error:
				if inner.Err() != nil {
					return
				}
				for inner.Err() == nil {
					select {
					case <-inner.Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
					next, err := subscribe()
					if err != nil {
						continue
					}
					<-sub.conn
					current = next
					sub.conn <- next
					if inner.Err() != nil { // closed meanwhile: the closer had the old one
						next.Close()
						return
					}
					break
				}
				for _, t := range topics {
					kick(t.kick)
				}
			}
		}
	}()
	return sub, nil
}
