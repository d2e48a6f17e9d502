// Command redisched-go puts, gets, reserves and acks jobs through the Go glue, printing JSON.
//
//	redisched-go put TOPIC ID BODY [DELAY_MS]
//	redisched-go get TOPIC ID
//	redisched-go reserve TOPIC
//	redisched-go ack TOPIC ID TOKEN
//	redisched-go serve [-addr 127.0.0.1:7273] [-push TOPIC=URL]... [-secret S]... [-cluster]
//
// serve answers POST /schedule/{topic} and /cancel/{topic} and pushes the due jobs of each
// -push topic to its webhook, signed with the -secret values; it prints {"ready": true, "port": N}
// once listening and stops gracefully on SIGTERM. With -cluster the URL is a node of a Redis
// Cluster.
//
// The server is $REDISCHED_REDIS_URL (default redis://127.0.0.1:6379/0); the scripts are read
// from $REDISCHED_LUA_DIR or this repository's src/redisched/lua.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"redisched"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	url := os.Getenv("REDISCHED_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if len(args) > 0 && args[0] == "serve" {
		return serve(url, args[1:])
	}
	pool := redisched.NewPool(url)
	defer pool.Close()
	client, err := redisched.New(pool, "")
	if err != nil {
		return err
	}
	ctx := context.Background()
	var out any
	switch {
	case len(args) >= 4 && args[0] == "put":
		var delay int64
		if len(args) == 5 {
			if delay, err = strconv.ParseInt(args[4], 10, 64); err != nil {
				return fmt.Errorf("DELAY_MS: %w", err)
			}
		}
		status, version, err := client.Put(ctx, args[1], args[2], []byte(args[3]), redisched.PutOptions{DelayMs: delay})
		if err != nil {
			return err
		}
		out = map[string]any{"status": status, "version": version}
	case len(args) == 3 && args[0] == "get":
		if out, err = client.Get(ctx, args[1], args[2]); err != nil {
			return err
		}
	case len(args) == 2 && args[0] == "reserve":
		if out, err = client.Reserve(ctx, args[1], 1, 0); err != nil {
			return err
		}
	case len(args) == 4 && args[0] == "ack":
		if err = client.Ack(ctx, &redisched.Job{Topic: args[1], ID: args[2], Token: args[3]}); err != nil {
			return err
		}
		out = map[string]any{"acked": args[2]}
	default:
		return fmt.Errorf("usage: redisched-go put TOPIC ID BODY [DELAY_MS] | get TOPIC ID | reserve TOPIC | ack TOPIC ID TOKEN | serve [flags]")
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
