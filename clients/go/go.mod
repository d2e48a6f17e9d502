module redisched

go 1.19

require github.com/gomodule/redigo v1.8.3

// The build machines reach no Go module proxy: redigo comes from Debian's
// golang-github-gomodule-redigo-dev (scripts/setup installs it). Elsewhere, drop this line
// (go mod edit -dropreplace github.com/gomodule/redigo && go mod tidy) to fetch it from the proxy.
replace github.com/gomodule/redigo => /usr/share/gocode/src/github.com/gomodule/redigo
