package redisched

// The wake-up subscription: the scripts PUBLISH on a topic's wake channel when work appears.

import (
	"context"
	"time"

	"github.com/gomodule/redigo/redis"
)

// WakeChannel is the Pub/Sub channel on which the scripts announce a topic's new work.
func (c *Client) WakeChannel(topic string) string { return c.Key(topic, "wake") }

type wakeSub struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *wakeSub) close() {
	s.cancel()
	<-s.done
}

// cancelPrefix starts a wake message that names a running job to cancel (the rest is its id);
// the scripts' own messages are numbers.
const cancelPrefix = 'x'

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
	sub := &wakeSub{cancel: cancel, done: make(chan struct{})}
	var mu chan struct{} = make(chan struct{}, 1)
	mu <- struct{}{}
	current := psc
	go func() {
		<-inner.Done()
		<-mu
		current.Close()
		mu <- struct{}{}
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
					<-mu
					current = next
					mu <- struct{}{}
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
