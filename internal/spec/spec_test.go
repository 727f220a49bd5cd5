package spec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// run checks locker.pml with the given spin -D options and returns pan's output.
func run(t *testing.T, defines ...string) string {
	t.Helper()
	for _, tool := range []string{"spin", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH: CI installs it (apt-get install spin gcc libc6-dev)", tool)
		}
	}
	src, err := os.ReadFile("locker.pml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "locker.pml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	step := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil && name != "./pan" {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	start := time.Now()
	step("spin", append(defines, "-a", "locker.pml")...)
	step("cc", "-O2", "-w", "-DSAFETY", "-DMEMLIM=1536", "-o", "pan", "pan.c")
	out := step("./pan", "-m100000")
	if ctx.Err() != nil {
		t.Fatalf("spin %v: timed out after %v", defines, time.Since(start))
	}
	states := regexp.MustCompile(`(\d+) states, stored`).FindStringSubmatch(out)
	if len(states) > 1 {
		t.Logf("spin %v: %s states stored, %v", defines, states[1], time.Since(start).Round(time.Millisecond))
	}
	return out
}

func TestSpinModel(t *testing.T) {
	out := run(t)
	if !strings.Contains(out, "errors: 0") || strings.Contains(out, "reached -DMEMLIM") || strings.Contains(out, "Search not completed") {
		t.Fatalf("model check failed or incomplete:\n%s", out)
	}
}

func TestSpinMutantFails(t *testing.T) {
	for _, m := range []string{"1", "3"} {
		t.Run("MUTANT="+m, func(t *testing.T) {
			out := run(t, "-DMUTANT="+m)
			if !strings.Contains(out, "assertion violated") {
				t.Fatalf("mutant %s: no assertion violation found:\n%s", m, out)
			}
		})
	}
}
