package redisched

// The wake-up subscription: the scripts PUBLISH on a topic's wake channel when work appears.

import (
	"bytes"
	"context"
	"time"

	"github.com/gomodule/redigo/redis"
)

// WakeChannel is the Pub/Sub channel on which the scripts announce a topic's new work.
func (c *Client) WakeChannel(topic string) string { return c.Key(topic, "wake") }

// cancelPrefix starts a wake message `c<token>:<id>` that names a reservation to cancel: the
// token it held when a script took it away (decimal digits, so the first ':' ends it) and the
// job's id. The scripts' other messages are numbers; `x<id>` (legacyCancelPrefix), the cancel of
// older scripts, named no reservation and is ignored (docs/design.md section 7).
const (
	cancelPrefix       = 'c'
	legacyCancelPrefix = 'x'
)

type wakeSub struct {
	cancel context.CancelFunc
	done   chan struct{}
	conn   chan *redis.PubSubConn // holds the current connection while nobody uses it
}

func (s *wakeSub) close() {
	s.cancel()
	<-s.done
}

// parseCancel splits a cancel message's `<token>:<id>` (what follows its prefix); ok is false
// when it is malformed.
func parseCancel(data []byte) (token, id string, ok bool) {
	colon := bytes.IndexByte(data, ':')
	if colon < 1 {
		return "", "", false
	}
	for _, b := range data[:colon] {
		if b < '0' || b > '9' {
			return "", "", false
		}
	}
	return string(data[:colon]), string(data[colon+1:]), true
}

// subscribeWake kicks each topic on a message of its wake channel, and every topic after a
// reconnection (messages may have been missed); a cancel message (`c<token>:<id>`) goes to
// onCancel instead. Returns once subscribed.
func (c *Client) subscribeWake(ctx context.Context, topics []*topicState,
	onCancel func(t *topicState, token, id string)) (*wakeSub, error) {
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
	sub := &wakeSub{cancel: cancel, done: make(chan struct{}), conn: make(chan *redis.PubSubConn, 1)}
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
					if token, id, ok := parseCancel(v.Data[1:]); ok {
						onCancel(t, token, id)
					}
				case len(v.Data) > 0 && v.Data[0] == legacyCancelPrefix:
				default:
					kick(t.kick)
				}
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
