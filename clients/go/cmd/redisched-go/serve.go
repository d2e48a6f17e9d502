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
	"unicode"

	"redisched"
)

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// serve runs the HTTP routes, behind the -token values if any, and, for each -push topic, a
// Worker delivering to its webhook.
func serve(url string, args []string, out io.Writer) error {
	flags := flag.NewFlagSet("serve", flag.ContinueOnError)
	flags.SetOutput(io.Discard) // errors are printed by main, the help below
	addr := flags.String("addr", "127.0.0.1:7273", "HOST:PORT to listen on, port 0 for any free one")
	cluster := flags.Bool("cluster", false, "the URL is a node of a Redis Cluster")
	concurrency := flags.Int("concurrency", 50, "deliveries at once, 1 to 10000")
	timeout := flags.Duration("timeout", 10*time.Second, "how long one delivery may take, at most 5m")
	insecure := flags.Bool("insecure", false, "serve an -addr other machines can reach without tokens ($REDISCHED_INSECURE=1)")
	var pushes, secrets, tokens, hosts repeated
	flags.Var(&hosts, "allowed-host", "a host name answered besides IP addresses, localhost and the -addr host; a\n"+
		"request for any other Host is 400 (DNS rebinding); * answers any (repeatable;\n"+
		"$REDISCHED_ALLOWED_HOSTS takes them comma-separated)")
	flags.Var(&tokens, "token", "an API token, at least 16 characters: every route but /healthz then needs\n"+
		"\"Authorization: Bearer T\" (repeatable; $REDISCHED_API_TOKENS takes them comma-separated)")
	flags.Var(&pushes, "push", "TOPIC=URL: push the topic's due jobs to URL, http(s) with a host, at most\n"+
		"2048 characters (repeatable)")
	flags.Var(&secrets, "secret", "a signing secret, a key of at least 16 bytes: whsec_<base64> or text,\n"+
		"8 to 512 characters (at most two: both sign during a rotation)")
	if err := flags.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(out, "%s\n\nAnswer POST /schedule/{topic} and /cancel/{topic}, and push the due jobs of each "+
			"-push topic\nto its webhook, signed with each -secret. The Redis server is $REDISCHED_REDIS_URL.\n"+
			"With -token (or $REDISCHED_API_TOKENS), every route but /healthz needs \"Authorization: Bearer T\";\n"+
			"a request for a Host other than an IP address, localhost, the -addr host or an -allowed-host is 400,\n"+
			"and a cross-site POST 403;\n"+
			"an -addr other machines can reach (not 127.0.0.0/8, ::1 or localhost) needs -token or -insecure.\n\n",
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
	apiTokens, err := access(*addr, tokens, *insecure)
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
	routes, err := redisched.NewServer(client, redisched.ServerOptions{Tokens: apiTokens,
		AllowedHosts: allowedHosts(*addr, hosts)})
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: routes, ReadHeaderTimeout: 10 * time.Second}
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
		// listening for the signals before saying ready: a SIGTERM sent on the ready line stops gracefully
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		ready()
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
// 65535: an empty host would listen on every interface, which must be asked for by name (access).
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

// access is the API tokens (-token, else $REDISCHED_API_TOKENS split at commas and spaces, as the
// Python service splits it), checked with the listen address as the Python service checks them:
// a refused token, or an addr other machines can reach without tokens and without -insecure
// ($REDISCHED_INSECURE), is a usage error in its words.
func access(addr string, given []string, insecure bool) ([]string, error) {
	tokens, name := given, "-token"
	if len(given) == 0 {
		tokens, name = strings.FieldsFunc(os.Getenv("REDISCHED_API_TOKENS"), func(r rune) bool {
			return r == ',' || unicode.IsSpace(r)
		}), "REDISCHED_API_TOKENS"
	}
	for i, token := range tokens {
		if problem := redisched.TokenProblem(token); problem != "" {
			if len(tokens) > 1 {
				name += fmt.Sprintf(" #%d", i+1)
			}
			return nil, &usageError{"serve", name + ": " + problem}
		}
	}
	if !insecure {
		var err error
		if insecure, err = envFlag("REDISCHED_INSECURE"); err != nil {
			return nil, err
		}
	}
	host, _, _ := net.SplitHostPort(addr) // checked by checkAddr
	if !redisched.IsLoopback(host) && len(tokens) == 0 && !insecure {
		return nil, &usageError{"serve", fmt.Sprintf("-addr: %s is reachable from other machines: set API tokens "+
			"(-token or REDISCHED_API_TOKENS), or pass -insecure to serve without authentication", host)}
	}
	return tokens, nil
}

// allowedHosts are the -allowed-host values (else $REDISCHED_ALLOWED_HOSTS split at commas, as
// the Python service reads it) and the host of addr, as the Python service adds its own.
func allowedHosts(addr string, given []string) []string {
	hosts := given
	if len(given) == 0 {
		for _, host := range strings.Split(os.Getenv("REDISCHED_ALLOWED_HOSTS"), ",") {
			if host = strings.TrimSpace(host); host != "" {
				hosts = append(hosts, host)
			}
		}
	}
	host, _, _ := net.SplitHostPort(addr) // checked by checkAddr
	return append(hosts, host)
}

// envFlag is the flag name of the environment, as the Python service reads it (1/0, true/false,
// yes/no, on/off; unset is false); anything else is a usage error naming the variable.
func envFlag(name string) (bool, error) {
	value := os.Getenv(name)
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, &usageError{"serve", fmt.Sprintf("%s: must be one of 1/0, true/false, yes/no, on/off, not %q",
		name, value)}
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
