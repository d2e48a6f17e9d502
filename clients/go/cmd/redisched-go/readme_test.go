package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"redisched"
)

// TestReadmeServerCommands: the main README's Go server commands work as written from the root
// of a clone, in order: the build line, then the server (with -help added so that it stops at
// once), whose secrets pass the rule serve applies. Before, the README showed `redisched-go serve`
// alone, a command no step had built.
func TestReadmeServerCommands(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```$").FindAllStringSubmatch(string(readme), -1) {
		if strings.Contains(m[1], "redisched-go serve") {
			block = strings.Split(strings.TrimSpace(m[1]), "\n")
		}
	}
	var ran int
	for _, line := range block {
		if !strings.Contains(line, "redisched-go") {
			continue
		}
		command := line
		serves := strings.Contains(line, "redisched-go serve")
		if serves {
			command += " -help"
		}
		cmd := exec.Command("sh", "-c", command)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		if serves {
			ran++
			if !strings.HasPrefix(string(out), "usage: redisched-go serve") {
				t.Fatalf("%s: %s", line, out)
			}
			for _, m := range regexp.MustCompile(`-secret[= ](\S+)`).FindAllStringSubmatch(line, -1) {
				if problem := redisched.SecretProblem(m[1]); problem != "" {
					t.Errorf("%s: -secret %s", line, problem)
				}
			}
		}
	}
	if ran == 0 {
		t.Fatal("the README shows no `redisched-go serve` in a ```sh block")
	}
}
