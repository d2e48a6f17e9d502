// Command testworker runs the Go Worker with the recording handler the Python suite drives
// (tests/test_glue_workers.py), the same behaviour as clients/node/testing/recording.js:
//
//	testworker [-concurrency N] [-ttr-ms N] [-grace-ms N] [-cluster] [-noop] TOPIC...
//
// Each run is recorded with RPUSH on "gluetest:<topic>:runs" as "<id> <attempt> <epoch ms>";
// the body (JSON, optional) says what to do: {"sleep_ms", "sleep_until", "fail_until", "error"}.
// It prints {"ready": true} once subscribed and stops gracefully on SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"redisched"
)

type spec struct {
	SleepMs    int64  `json:"sleep_ms"`
	SleepUntil *int64 `json:"sleep_until"`
	FailUntil  int64  `json:"fail_until"`
	Error      string `json:"error"`
}

func main() {
	concurrency := flag.Int("concurrency", 50, "handlers at once")
	ttrMs := flag.Int64("ttr-ms", 0, "lease length (0: each job's ttr)")
	graceMs := flag.Int64("grace-ms", 30000, "grace period after SIGTERM")
	cluster := flag.Bool("cluster", false, "the URL is a node of a Redis Cluster")
	noop := flag.Bool("noop", false, "handlers do nothing (the benchmark's load)")
	flag.Parse()
	url := os.Getenv("REDISCHED_REDIS_URL")
	var client *redisched.Client
	var err error
	if *cluster {
		client, err = redisched.NewCluster([]string{url}, "")
	} else {
		client, err = redisched.New(redisched.NewPool(url), "")
	}
	if err != nil {
		log.Fatal(err)
	}
	handlers := map[string]redisched.Handler{}
	for _, topic := range flag.Args() {
		if *noop {
			handlers[topic] = func(context.Context, *redisched.Job) error { return nil }
			continue
		}
		handlers[topic] = func(ctx context.Context, job *redisched.Job) error {
			record := fmt.Sprintf("%s %d %d", job.ID, job.Attempts, time.Now().UnixMilli())
			if err := client.Record(ctx, "gluetest:"+job.Topic+":runs", record); err != nil {
				return err
			}
			var s spec
			_ = json.Unmarshal(job.Body, &s)
			if s.SleepMs > 0 && (s.SleepUntil == nil || job.Attempts <= *s.SleepUntil) {
				select {
				case <-time.After(time.Duration(s.SleepMs) * time.Millisecond):
				case <-ctx.Done():
				}
			}
			if job.Attempts <= s.FailUntil {
				if s.Error == "" {
					s.Error = "failed on purpose"
				}
				return errors.New(s.Error)
			}
			return nil
		}
	}
	w, err := redisched.NewWorker(client, handlers, redisched.Options{Concurrency: *concurrency,
		TTRMs: *ttrMs, Grace: time.Duration(*graceMs) * time.Millisecond,
		OnReady: func() { fmt.Println(`{"ready": true}`) }})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}
