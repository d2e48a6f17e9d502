package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"redisched"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// serve runs the HTTP routes and, for each -push topic, a Worker delivering to its webhook.
func serve(url string, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // errors are printed by main, the help below
	addr := flags.String("addr", "127.0.0.1:7273", "HOST:PORT to listen on, port 0 for any free one")
	cluster := flags.Bool("cluster", false, "the URL is a node of a Redis Cluster")
	concurrency := flags.Int("concurrency", 50, "deliveries at once, 1 to 10000")
	timeout := flags.Duration("timeout", 10*time.Second, "how long one delivery may take, at most 5m")
	var pushes, secrets repeated
	flags.Var(&pushes, "push", "TOPIC=URL: push the topic's due jobs to URL, http(s) with a host, at most\n"+
		"2048 characters (repeatable)")
	flags.Var(&secrets, "secret", "a signing secret, a key of at least 16 bytes: whsec_<base64> or text,\n"+
		"8 to 512 characters (at most two: both sign during a rotation)")
	if err := flags.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(out, "%s\n\nAnswer POST /schedule/{topic} and /cancel/{topic}, and push the due jobs of each "+
			"-push topic\nto its webhook, signed with each -secret. The Redis server is $REDISCHED_REDIS_URL.\n\n",
			usageOf("serve"))
		flags.SetOutput(out)
		flags.PrintDefaults()
		return err
	} else if err != nil {
		// flag's "flag provided but not defined: -x", in the words of the other commands
		return &usageError{"serve", strings.Replace(err.Error(), "flag provided but not defined", "no such option", 1)}
	}
	if flags.NArg() > 0 {
		return &usageError{"serve", "unexpected argument: " + flags.Arg(0)}
	}
	if err := checkAddr(*addr); err != nil {
		return err
	}
	if *concurrency < 1 || *concurrency > redisched.MaxConcurrency {
		return &usageError{"serve", fmt.Sprintf("-concurrency: must be from 1 to %d", redisched.MaxConcurrency)}
	}
	handlers, err := pushHandlers(pushes, secrets, *timeout)
	if err != nil {
		return err
	}
	var client *redisched.Client
	if *cluster {
		client, err = redisched.NewCluster([]string{url}, "")
	} else {
		client, err = redisched.New(redisched.NewPool(url), "")
	}
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: redisched.NewServer(client), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	ready := func() {
		line, _ := json.Marshal(map[string]any{"ready": true, "port": listener.Addr().(*net.TCPAddr).Port,
			"push": pushes})
		fmt.Fprintln(out, string(line))
	}
	if len(handlers) > 0 {
		w, err := redisched.NewWorker(client, handlers, redisched.Options{Concurrency: *concurrency, OnReady: ready})
		if err != nil {
			return err
		}
		if err := w.Run(context.Background()); err != nil {
			return err
		}
	} else {
		ready()
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(ctx); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// checkAddr refuses an -addr that is not HOST:PORT with a host and a port from 0 (any free one) to
// 65535: an empty host would listen on every interface, and the server has no authentication.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host != "" {
		if _, err = strconv.ParseUint(port, 10, 16); err == nil {
			return nil
		}
	}
	return &usageError{"serve", fmt.Sprintf("-addr %q: must be HOST:PORT with a host (0.0.0.0 for every "+
		"interface) and a port from 0 to 65535", addr)}
}

// pushHandlers are the webhook handlers of the -push specs, checked before anything starts as the
// Python service checks a topic's webhook: each URL, then the -secret values, then -timeout.
func pushHandlers(pushes, secrets []string, timeout time.Duration) (map[string]redisched.Handler, error) {
	targets := map[string]string{}
	for _, spec := range pushes {
		topic, target, ok := strings.Cut(spec, "=")
		if !ok || topic == "" {
			return nil, &usageError{"serve", fmt.Sprintf("-push %s: must be TOPIC=URL", spec)}
		}
		if problem := redisched.WebhookURLProblem(target); problem != "" {
			return nil, &usageError{"serve", fmt.Sprintf("-push %s: %s", spec, problem)}
		}
		targets[topic] = target
	}
	if field, problem := redisched.SecretsProblem(secrets); problem != "" {
		option, i := "-secret", 0
		if _, err := fmt.Sscanf(field, "secrets[%d]", &i); err == nil && len(secrets) > 1 {
			option = fmt.Sprintf("-secret #%d", i+1)
		}
		return nil, &usageError{"serve", fmt.Sprintf("%s: %s", option, problem)}
	}
	if timeout <= 0 || timeout > redisched.MaxWebhookTimeout {
		return nil, &usageError{"serve", fmt.Sprintf("-timeout: must be more than 0s and at most %v",
			redisched.MaxWebhookTimeout)}
	}
	handlers := map[string]redisched.Handler{}
	for topic, target := range targets {
		handler, err := redisched.WebhookHandler(target, secrets, timeout)
		if err != nil {
			return nil, err
		}
		handlers[topic] = handler
	}
	return handlers, nil
}
