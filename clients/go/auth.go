package redisched

// Bearer tokens for the server, as the Python service has them (src/redisched/http/auth.py):
// every route but /healthz needs "Authorization: Bearer <token>"; a token is 16 to 4096
// printable characters.

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinTokenLength is the shortest API token accepted, in characters.
const MinTokenLength = 16

const maxTokenLength = 4096

// openPaths are served without a token.
var openPaths = map[string]bool{"/healthz": true}

// TokenProblem is why an API token is refused, in the Python service's words, or "": it must be
// MinTokenLength to 4096 printable characters.
func TokenProblem(token string) string {
	n := utf8.RuneCountInString(token)
	printable := utf8.ValidString(token) && strings.IndexFunc(token, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
	switch {
	case n == 0 || n > maxTokenLength || !printable:
		return fmt.Sprintf("each token must be 1 to %d printable characters", maxTokenLength)
	case n < MinTokenLength:
		return fmt.Sprintf("each token must be at least %d characters, so that it cannot be guessed "+
			"(try: python3 -c 'import secrets; print(secrets.token_urlsafe())')", MinTokenLength)
	}
	return ""
}

// TokensProblem is the field ("tokens[i]") and the words refusing the first refused token, or
// "", "".
func TokensProblem(tokens []string) (field, message string) {
	for i, token := range tokens {
		if problem := TokenProblem(token); problem != "" {
			return fmt.Sprintf("tokens[%d]", i), problem
		}
	}
	return "", ""
}

// IsLoopback reports whether host names this machine only (127.0.0.0/8, ::1, localhost).
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearerAuth answers 401 unless a request sends "Authorization: Bearer <one of the tokens>";
// open paths need none.
type bearerAuth struct {
	digests [][sha256.Size]byte
	next    http.Handler
}

// allows reports whether an Authorization header value carries an accepted token. Every token
// is compared in constant time, whichever matches, so timing reveals neither a token nor which
// one was close; the digests give ConstantTimeCompare equal lengths without revealing a token's.
func (a *bearerAuth) allows(header string) bool {
	presented := ""
	if len(header) >= 7 && strings.EqualFold(header[:7], "bearer ") {
		presented = strings.Trim(header[7:], " \t")
	}
	sent := sha256.Sum256([]byte(presented))
	matched := 0
	for i := range a.digests {
		matched |= subtle.ConstantTimeCompare(sent[:], a.digests[i][:])
	}
	return matched == 1 && presented != ""
}

func (a *bearerAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// before routing and before the body is read: a refused request learns nothing, stores nothing
	if !openPaths[r.URL.Path] && !a.allows(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="redisched"`)
		writeError(w, &apiError{401, "unauthorized", "send Authorization: Bearer <token>", "Authorization"})
		return
	}
	a.next.ServeHTTP(w, r)
}

// withTokens is next behind bearer tokens, or next itself without tokens.
func withTokens(next http.Handler, tokens []string) http.Handler {
	if len(tokens) == 0 {
		return next
	}
	a := &bearerAuth{next: next}
	for _, token := range tokens {
		a.digests = append(a.digests, sha256.Sum256([]byte(token)))
	}
	return a
}
