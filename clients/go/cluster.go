package redisched

// Redis Cluster support by per-slot routing: every script call of a topic goes to the node that
// holds the slot of the topic's hash tag (all of a topic's keys share it). The slot map comes
// from CLUSTER SLOTS and is read again on a MOVED reply or a connection error.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"

	"github.com/gomodule/redigo/redis"
)

// Cluster routes connections to the node serving a key's slot.
type Cluster struct {
	options []redis.DialOption
	mu      sync.RWMutex
	seeds   []string
	slots   [16384]string // slot -> "host:port" of its master
	pools   map[string]*redis.Pool
}

// NewCluster is a Client whose calls go to the nodes of a Redis Cluster; seeds are node
// addresses ("host:port") or redis:// URLs; dir is the folder of the scripts ("" = ScriptsDir()).
func NewCluster(seeds []string, dir string, options ...redis.DialOption) (*Client, error) {
	cl := &Cluster{options: options, pools: map[string]*redis.Pool{}}
	for _, s := range seeds {
		cl.seeds = append(cl.seeds, strings.TrimSuffix(strings.TrimPrefix(s, "redis://"), "/0"))
	}
	if err := cl.Refresh(); err != nil {
		return nil, err
	}
	c, err := New(cl.pool(cl.seeds[0]), dir)
	if err != nil {
		return nil, err
	}
	c.Cluster = cl
	return c, nil
}

func (cl *Cluster) pool(addr string) *redis.Pool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	p, ok := cl.pools[addr]
	if !ok {
		p = &redis.Pool{MaxIdle: 8, Dial: func() (redis.Conn, error) { return redis.Dial("tcp", addr, cl.options...) },
			TestOnBorrow: pingIfIdle}
		cl.pools[addr] = p
	}
	return p
}

// Refresh reads the slot map from the first node that answers.
func (cl *Cluster) Refresh() error {
	cl.mu.RLock()
	candidates := append([]string{}, cl.seeds...)
	for addr := range cl.pools {
		candidates = append(candidates, addr)
	}
	cl.mu.RUnlock()
	var lastErr error = errors.New("redisched: no cluster node given")
	for _, addr := range candidates {
		conn := cl.pool(addr).Get()
		ranges, err := redis.Values(conn.Do("CLUSTER", "SLOTS"))
		conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		var slots [16384]string
		for _, raw := range ranges {
			r, _ := redis.Values(raw, nil)
			if len(r) < 3 {
				continue
			}
			from, _ := redis.Int(r[0], nil)
			to, _ := redis.Int(r[1], nil)
			node, _ := redis.Values(r[2], nil)
			if len(node) < 2 || from < 0 || to > 16383 {
				continue
			}
			host, _ := redis.String(node[0], nil)
			port, _ := redis.Int(node[1], nil)
			if host == "" {
				host = strings.Split(addr, ":")[0]
			}
			for s := from; s <= to; s++ {
				slots[s] = host + ":" + strconv.Itoa(port)
			}
		}
		cl.mu.Lock()
		cl.slots = slots
		cl.mu.Unlock()
		return nil
	}
	return fmt.Errorf("redisched: cluster slots: %w", lastErr)
}

// Conn is a connection to the node serving key's slot ("" = any node).
func (cl *Cluster) Conn(ctx context.Context, key string) (redis.Conn, error) {
	cl.mu.RLock()
	addr := ""
	if key != "" {
		addr = cl.slots[Slot(key)]
	} else {
		addr = cl.slots[rand.Intn(16384)]
	}
	cl.mu.RUnlock()
	if addr == "" {
		if err := cl.Refresh(); err != nil {
			return nil, err
		}
		return nil, errors.New("redisched: no cluster node serves the slot of " + key)
	}
	conn, err := cl.pool(addr).GetContext(ctx)
	if err != nil {
		go cl.Refresh() //nolint:errcheck // the next call sees the new map, or fails again
		return nil, err
	}
	return &clusterConn{Conn: conn, cl: cl}, nil
}

// dial opens a connection of its own to any master.
func (cl *Cluster) dial() (redis.Conn, error) {
	cl.mu.RLock()
	addr := cl.slots[rand.Intn(16384)]
	cl.mu.RUnlock()
	if addr == "" {
		addr = cl.seeds[0]
	}
	return redis.Dial("tcp", addr, cl.options...)
}

// Close closes the pools of every node.
func (cl *Cluster) Close() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, p := range cl.pools {
		p.Close()
	}
	return nil
}

// clusterConn follows a MOVED reply once (to the node it names) and refreshes the slot map.
type clusterConn struct {
	redis.Conn
	cl *Cluster
}

func moved(err error) (string, bool) {
	var e redis.Error
	if !errors.As(err, &e) || !strings.HasPrefix(string(e), "MOVED ") {
		return "", false
	}
	parts := strings.Fields(string(e))
	return parts[len(parts)-1], len(parts) == 3
}

func (c *clusterConn) Do(cmd string, args ...any) (any, error) {
	reply, err := c.Conn.Do(cmd, args...)
	if err == nil {
		if e, ok := reply.(redis.Error); ok {
			err = e
		}
	}
	addr, ok := moved(err)
	if !ok {
		return reply, err
	}
	go c.cl.Refresh() //nolint:errcheck
	other := c.cl.pool(addr).Get()
	defer other.Close()
	return other.Do(cmd, args...)
}

func (c *clusterConn) Receive() (any, error) {
	reply, err := c.Conn.Receive()
	if e, ok := reply.(redis.Error); ok {
		if _, isMoved := moved(e); isMoved {
			go c.cl.Refresh() //nolint:errcheck // the caller retries with the new map
		}
	}
	return reply, err
}

// Slot is the Redis Cluster slot of a key: CRC16 of its hash tag (or the whole key) mod 16384.
func Slot(key string) int {
	if start := strings.IndexByte(key, '{'); start >= 0 {
		if end := strings.IndexByte(key[start+1:], '}'); end > 0 {
			key = key[start+1 : start+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
