// Command redisched-go puts, gets, reserves and acks jobs through the Go glue, printing JSON.
//
//	redisched-go put TOPIC ID BODY [DELAY_MS]
//	redisched-go get TOPIC ID
//	redisched-go reserve TOPIC
//	redisched-go ack TOPIC ID TOKEN
//	redisched-go serve [-addr 127.0.0.1:7273] [-token T]... [-insecure] [-allowed-host H]... [-push TOPIC=URL]... [-secret S]... [-cluster]
//
// serve answers POST /schedule/{topic} and /cancel/{topic} and pushes the due jobs of each
// -push topic to its webhook, signed with the -secret values; it prints {"ready": true, "port": N}
// once listening and stops gracefully on SIGTERM. With -cluster the URL is a node of a Redis
// Cluster. With -token (repeatable; or $REDISCHED_API_TOKENS, comma-separated), each at least 16
// characters, every route but /healthz needs "Authorization: Bearer T". -addr must name a host
// (an empty host would listen on every interface) and a port from 0 to 65535; a host other
// machines can reach (not 127.0.0.0/8, ::1 or localhost) is refused without tokens unless
// -insecure ($REDISCHED_INSECURE=1) is given. A request for a Host other than an IP address,
// localhost, the -addr host or an -allowed-host ($REDISCHED_ALLOWED_HOSTS, comma-separated) is
// 400, and a cross-site POST 403. -concurrency is from 1 to 10000.
//
// COMMAND -help prints a command's usage; an unknown option or a wrong number of arguments is a
// usage error (exit 2) and nothing is done; "--" ends the options (an ID starting with "-").
//
// The server is $REDISCHED_REDIS_URL (default redis://127.0.0.1:6379/0); the scripts are read
// from $REDISCHED_LUA_DIR or this repository's src/redisched/lua.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"redisched"
)

// command is one subcommand's usage and how many operands it takes.
type command struct {
	usage    string
	min, max int
}

var commands = map[string]command{
	"put":     {"put TOPIC ID BODY [DELAY_MS]", 3, 4},
	"get":     {"get TOPIC ID", 2, 2},
	"reserve": {"reserve TOPIC", 1, 1},
	"ack":     {"ack TOPIC ID TOKEN", 3, 3},
	"serve": {"serve [-addr HOST:PORT] [-token T]... [-insecure] [-allowed-host H]... [-push TOPIC=URL]... [-secret S]... [-timeout D] " +
		"[-concurrency N] [-cluster]", 0, 0},
}

// order is the order of the commands in the usage.
var order = []string{"put", "get", "reserve", "ack", "serve"}

// usageError is a bad command line: printed with the command's usage, exit 2, nothing done.
type usageError struct{ command, message string }

func (e *usageError) Error() string { return e.message }

func main() {
	err := run(os.Args[1:], os.Stdout)
	var bad *usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp): // the help was printed
	case errors.As(err, &bad):
		program := strings.TrimSpace("redisched-go " + bad.command)
		fmt.Fprintf(os.Stderr, "%s: %s\n%s\nTry '%s -help' for help.\n", program, bad.message,
			usageOf(bad.command), program)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// usageOf is the usage line of name, or of every command when name is "".
func usageOf(name string) string {
	if name != "" {
		return "usage: redisched-go " + commands[name].usage
	}
	lines := make([]string, len(order))
	for i, n := range order {
		lines[i] = "redisched-go " + commands[n].usage
	}
	return "usage: " + strings.Join(lines, "\n       ") + "\n       (COMMAND -help for its usage)"
}

func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// operands are the arguments of name after its options: a help option prints its usage to out
// (flag.ErrHelp), any other option ("-x", "--x"; not "-1") is a usage error, "--" ends options.
func operands(name string, args []string, out io.Writer) ([]string, error) {
	var found []string
	for i, arg := range args {
		if arg == "--" {
			found = append(found, args[i+1:]...)
			break
		}
		if isHelp(arg) {
			fmt.Fprintln(out, usageOf(name))
			return nil, flag.ErrHelp
		}
		if len(arg) > 1 && arg[0] == '-' && !strings.ContainsAny(arg[1:2], "0123456789.") {
			return nil, &usageError{name, "no such option: " + arg}
		}
		found = append(found, arg)
	}
	if c := commands[name]; len(found) < c.min || len(found) > c.max {
		wanted := strconv.Itoa(c.min)
		if c.max > c.min {
			wanted += " or " + strconv.Itoa(c.max)
		}
		return nil, &usageError{name, fmt.Sprintf("takes %s arguments, not %d", wanted, len(found))}
	}
	return found, nil
}

func run(args []string, out io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(out, usageOf(""))
		return flag.ErrHelp
	}
	if len(args) == 0 {
		return &usageError{"", "a command is needed"}
	}
	if _, ok := commands[args[0]]; !ok {
		return &usageError{"", "no such command: " + args[0]}
	}
	url := os.Getenv("REDISCHED_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if args[0] == "serve" {
		return serve(url, args[1:], out)
	}
	name := args[0]
	args, err := operands(name, args[1:], out)
	if err != nil {
		return err
	}
	var delay int64
	if name == "put" && len(args) == 4 {
		if delay, err = strconv.ParseInt(args[3], 10, 64); err != nil {
			return &usageError{name, fmt.Sprintf("DELAY_MS: must be an integer, not %q", args[3])}
		}
	}
	pool := redisched.NewPool(url)
	defer pool.Close()
	client, err := redisched.New(pool, "")
	if err != nil {
		return err
	}
	ctx := context.Background()
	var result any
	switch name {
	case "put":
		status, version, err := client.Put(ctx, args[0], args[1], []byte(args[2]), redisched.PutOptions{DelayMs: delay})
		if err != nil {
			return err
		}
		result = map[string]any{"status": status, "version": version}
	case "get":
		if result, err = client.Get(ctx, args[0], args[1]); err != nil {
			return err
		}
	case "reserve":
		if result, err = client.Reserve(ctx, args[0], 1, 0); err != nil {
			return err
		}
	case "ack":
		if err = client.Ack(ctx, &redisched.Job{Topic: args[0], ID: args[1], Token: args[2]}); err != nil {
			return err
		}
		result = map[string]any{"acked": args[1]}
	}
	return json.NewEncoder(out).Encode(result)
}
