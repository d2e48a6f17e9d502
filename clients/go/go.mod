module redisched

go 1.19

require (
	github.com/gomodule/redigo v1.8.3
	github.com/robfig/cron/v3 v3.0.1
)

// The build machines reach no Go module proxy: redigo and robfig/cron come from Debian's
// golang-github-gomodule-redigo-dev and golang-github-robfig-cron-dev (scripts/setup installs
// them). Elsewhere, drop these lines (go mod edit -dropreplace github.com/gomodule/redigo
// -dropreplace github.com/robfig/cron/v3 && go mod tidy) to fetch them from the proxy.
replace github.com/gomodule/redigo => /usr/share/gocode/src/github.com/gomodule/redigo

replace github.com/robfig/cron/v3 => /usr/share/gocode/src/github.com/robfig/cron
