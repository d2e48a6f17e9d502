package redisched

// The same-origin guard of the Python service (src/redisched/http/sameorigin.py): without API
// tokens the server trusts whoever can reach it, so a web page must not use a visitor's browser
// to reach it.
//
//   - DNS rebinding: a page re-points its own name at 127.0.0.1 and reads the server as
//     same-origin; its requests carry "Host: attacker.example". A Host that is no IP address,
//     not localhost and not an allowed host (the listen host, -allowed-host) is 400 bad_host.
//   - Cross-site writes: a form or fetch POST from another origin needs no CORS preflight. A
//     state-changing request (not GET, HEAD or OPTIONS) whose Origin is not the server's own
//     (same host and port as its Host), or whose Sec-Fetch-Site is cross-site, is 403 cross_site.
//
// Requests without those headers (curl, the SDKs, other servers) are not affected: only browsers
// send them, and browsers always do on the requests that matter here.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

var safeMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true}

// hostName is the name part of a Host value (no port, no brackets, lower case, no final dot).
func hostName(host string) string {
	host = strings.ToLower(strings.TrimSpace(host))
	if strings.HasPrefix(host, "[") {
		name, _, _ := strings.Cut(host[1:], "]")
		return name
	}
	if strings.Count(host, ":") == 1 {
		host, _, _ = strings.Cut(host, ":")
	}
	return strings.TrimRight(host, ".")
}

// netloc is the name and port of a Host value or an Origin's netloc, as Python's urlsplit splits
// them: a port left out (or 0) is defaultPort, a bad one -1.
func netloc(value string, defaultPort int) (string, int) {
	name, port := hostAndPort(strings.ToLower(strings.TrimSpace(value)))
	number := defaultPort
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil:
			number = -1
		case n != 0:
			number = int(n)
		}
	}
	return strings.TrimRight(name, "."), number
}

var originPattern = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)`)

// sameOrigin reports whether origin names the host and port (host, else the listener's address)
// the request was sent to. A port left out is the default of the Origin's scheme on both sides:
// behind a TLS proxy the browser's https://name and "Host: name" still match.
func sameOrigin(origin, host string, r *http.Request) bool {
	m := originPattern.FindStringSubmatch(strings.TrimSpace(origin))
	if m == nil {
		return false // "null" (sandboxed frames, file: pages) and anything unparsable
	}
	scheme := strings.ToLower(m[1])
	defaultPort := map[string]int{"http": 80, "https": 443}[scheme]
	if defaultPort == 0 {
		return false
	}
	name, port := netloc(m[2], defaultPort)
	if name == "" {
		return false
	}
	if host == "" {
		local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if !ok {
			return false
		}
		host = local.String()
	}
	hostName, hostPort := netloc(host, defaultPort)
	return name == hostName && port == hostPort
}

// sameOriginGuard refuses, before next sees them, the requests the two rules above refuse.
type sameOriginGuard struct {
	names   map[string]bool
	anyHost bool
	next    http.Handler
}

// withSameOrigin is next behind the guard; allowedHosts are the host names answered besides IP
// addresses and localhost, "*" any.
func withSameOrigin(next http.Handler, allowedHosts []string) http.Handler {
	g := &sameOriginGuard{names: map[string]bool{"localhost": true, "localhost.localdomain": true}, next: next}
	for _, host := range allowedHosts {
		g.names[hostName(host)] = true
	}
	g.anyHost = g.names["*"]
	return g
}

func (g *sameOriginGuard) hostAllowed(host string) bool {
	name := hostName(host)
	_, err := netip.ParseAddr(name)
	return g.anyHost || g.names[name] || err == nil
}

// refusal is why r is refused, or nil to serve it.
func (g *sameOriginGuard) refusal(r *http.Request) *apiError {
	crossSite := func(field, why string) *apiError {
		return &apiError{403, "cross_site", why + ": state-changing requests are refused", field}
	}
	if r.Host != "" && !g.hostAllowed(r.Host) {
		return &apiError{400, "bad_host", fmt.Sprintf("this service does not answer for host %s "+
			"(add it with --allowed-host)", pyRepr(hostName(r.Host))), "Host"}
	}
	if safeMethods[r.Method] {
		return nil
	}
	if strings.ToLower(strings.TrimSpace(r.Header.Get("Sec-Fetch-Site"))) == "cross-site" {
		return crossSite("Sec-Fetch-Site", "the request comes from another site")
	}
	if origins, sent := r.Header["Origin"]; sent && !sameOrigin(origins[0], r.Host, r) {
		return crossSite("Origin", fmt.Sprintf("origin %s is not this service's own", pyRepr(origins[0])))
	}
	return nil
}

func (g *sameOriginGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// before routing and before the body is read: a refused request learns nothing, stores nothing
	if problem := g.refusal(r); problem != nil {
		writeError(w, problem)
		return
	}
	g.next.ServeHTTP(w, r)
}

// pyRepr is text as Python's repr() writes it, as the Python service's messages quote a header,
// a JSON key or a URL's host: backslashes, the quote and non-printable characters escaped.
func pyRepr(text string) string {
	quote := '\''
	if strings.ContainsRune(text, '\'') && !strings.ContainsRune(text, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range text {
		switch {
		case r == '\\' || r == quote:
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}
