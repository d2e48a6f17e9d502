package redisched

// A webhook's settings checked as the Python service checks a topic's webhook
// (src/redisched/topic_config.py: validate_webhook and check_webhook_url), in its words:
// conformance/webhooks.json holds the cases the three must agree on. The URL is split as Python's
// urllib.parse.urlsplit splits it, so that both refuse the same URLs.

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxURLLength is the longest webhook URL, in characters.
	MaxURLLength = 2048
	// MaxSecrets is how many signing secrets a webhook may hold: two during a rotation.
	MaxSecrets     = 2
	minSecretChars = 8
	maxSecretChars = 512
	// MaxWebhookTimeout is the longest a delivery may take.
	MaxWebhookTimeout     = 300 * time.Second
	defaultWebhookTimeout = 10 * time.Second
)

var (
	schemePattern    = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)
	ipvFuturePattern = regexp.MustCompile(`^v[a-fA-F0-9]+\..+$`)
	portPattern      = regexp.MustCompile(`^[0-9]+$`)
)

// nfkcDelimiters are the characters that Unicode NFKC normalization turns into text holding
// one of "/?#@:" (U+FF0F, a full-width slash, becomes "/"), which urlsplit refuses in a host:
// every such character, listed because Go's standard library has no NFKC.
const nfkcDelimiters = "\u2047\u2048\u2049\u2100\u2101\u2105\u2106\u2a74\ufe13\ufe16\ufe55\ufe56\ufe5f" +
	"\ufe6b\uff03\uff0f\uff1a\uff1f\uff20"

const (
	hostProblem = "must be an http:// or https:// URL with a host"
	portProblem = "must have a port from 1 to 65535 (or none)"
)

// bracketedHostProblem is why Python's ipaddress module refuses a host written in brackets, or "".
func bracketedHostProblem(host string) string {
	if strings.HasPrefix(host, "v") {
		if ipvFuturePattern.MatchString(host) {
			return ""
		}
		return "IPvFuture address is invalid"
	}
	addr, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return pyRepr(host) + " does not appear to be an IPv4 or IPv6 address"
	case addr.Is4():
		return "An IPv4 address cannot be in brackets"
	}
	return ""
}

// netlocProblem is why urlsplit refuses a netloc (its ValueError's words), or "".
func netlocProblem(netloc string) string {
	open := strings.Index(netloc, "[")
	if (open >= 0) != strings.Contains(netloc, "]") {
		return "Invalid IPv6 URL"
	}
	if open >= 0 {
		host, _, _ := strings.Cut(netloc[open+1:], "]")
		if problem := bracketedHostProblem(host); problem != "" {
			return problem
		}
	}
	if strings.ContainsAny(netloc, nfkcDelimiters) {
		return fmt.Sprintf("netloc '%s' contains invalid characters under NFKC normalization", netloc)
	}
	return ""
}

// urlParts are the scheme (lowercased), netloc, host and port of target as urlsplit finds them.
func urlParts(target string) (scheme, netloc, host, port string) {
	rest := target
	if m := schemePattern.FindStringSubmatch(target); m != nil {
		scheme, rest = strings.ToLower(m[1]), target[len(m[0]):]
	}
	if strings.HasPrefix(rest, "//") {
		netloc = rest[2:]
		if end := strings.IndexAny(netloc, "/?#"); end >= 0 {
			netloc = netloc[:end]
		}
	}
	host, port = hostAndPort(netloc)
	return scheme, netloc, host, port
}

// hostAndPort are the host and the port text of a netloc as urlsplit finds them: after any
// userinfo, the host in brackets or up to the first colon.
func hostAndPort(netloc string) (host, port string) {
	hostinfo := netloc[strings.LastIndex(netloc, "@")+1:]
	if _, bracketed, ok := strings.Cut(hostinfo, "["); ok {
		var after string
		host, after, _ = strings.Cut(bracketed, "]")
		_, port, _ = strings.Cut(after, ":")
		return host, port
	}
	host, port, _ = strings.Cut(hostinfo, ":")
	return host, port
}

// WebhookURLProblem is why target is refused as a webhook URL, or "": the Python service's rules
// and words. It must be an http(s) URL with a host, of at most MaxURLLength characters, without
// spaces or control characters, with a port from 1 to 65535 if any.
func WebhookURLProblem(target string) string {
	if utf8.RuneCountInString(target) > MaxURLLength {
		return fmt.Sprintf("must be a URL of at most %d chars", MaxURLLength)
	}
	if !utf8.ValidString(target) {
		return "must be valid UTF-8"
	}
	// unicode.IsSpace takes what Python's str.isspace() takes.
	if strings.IndexFunc(target, func(r rune) bool { return unicode.IsSpace(r) || r < 32 || r == 127 }) >= 0 {
		return "must not contain spaces or control characters"
	}
	scheme, netloc, host, port := urlParts(target)
	if problem := netlocProblem(netloc); problem != "" {
		return "is not a valid URL: " + problem
	}
	if (scheme != "http" && scheme != "https") || host == "" {
		return hostProblem
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if !portPattern.MatchString(port) || err != nil || n < 1 || n > 65535 {
			return portProblem
		}
	}
	if _, err := url.Parse(target); err != nil { // the HTTP client must reach what Python takes
		return "is not a valid URL: " + err.Error()
	}
	return ""
}

// SecretsProblem is the field ("secrets" or "secrets[i]") and the words refusing a webhook's
// signing secrets, or "", "": at most MaxSecrets, each of 8 to 512 characters and accepted by
// SecretProblem.
func SecretsProblem(secrets []string) (field, message string) {
	fits := len(secrets) <= MaxSecrets
	for _, s := range secrets {
		n := utf8.RuneCountInString(s)
		fits = fits && n >= minSecretChars && n <= maxSecretChars
	}
	if !fits {
		return "secrets", fmt.Sprintf("must hold at most %d secrets of %d to %d characters", MaxSecrets,
			minSecretChars, maxSecretChars)
	}
	for i, s := range secrets {
		if problem := SecretProblem(s); problem != "" {
			return fmt.Sprintf("secrets[%d]", i), problem
		}
	}
	return "", ""
}

// TimeoutProblem is why a delivery timeout is refused, or "": it must be more than 0 and at most
// MaxWebhookTimeout (0 stands for the default, 10 s).
func TimeoutProblem(timeout time.Duration) string {
	if timeout < 0 || timeout > MaxWebhookTimeout {
		return fmt.Sprintf("must be more than 0 and at most %v (0: the default, %v)", MaxWebhookTimeout,
			defaultWebhookTimeout)
	}
	return ""
}

// CheckWebhook checks a webhook's settings as the Python service checks a topic's webhook, in the
// same order (the URL, the secrets, the timeout): an *InvalidArgument names the first refused
// ("url", "secrets", "secrets[i]" or "timeout").
func CheckWebhook(target string, secrets []string, timeout time.Duration) error {
	if problem := WebhookURLProblem(target); problem != "" {
		return invalidArg("url", "%s", problem)
	}
	if field, problem := SecretsProblem(secrets); problem != "" {
		return invalidArg(field, "%s", problem)
	}
	if problem := TimeoutProblem(timeout); problem != "" {
		return invalidArg("timeout", "%s", problem)
	}
	return nil
}
