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

// TestSpinModel checks the default model and the reconfiguration model
// exhaustively: no assertion violated, the whole state space searched.
func TestSpinModel(t *testing.T) {
	for _, c := range []struct{ name, define string }{{"default", ""}, {"RECONFIG", "-DRECONFIG"}} {
		t.Run(c.name, func(t *testing.T) {
			var defines []string
			if c.define != "" {
				defines = append(defines, c.define)
			}
			out := run(t, defines...)
			if !strings.Contains(out, "errors: 0") || strings.Contains(out, "reached -DMEMLIM") || strings.Contains(out, "Search not completed") {
				t.Fatalf("model check failed or incomplete:\n%s", out)
			}
		})
	}
}

// TestSpinMutantFails checks that spin finds the violation each broken
// variant of the protocol allows (see the mutants in locker.pml).
func TestSpinMutantFails(t *testing.T) {
	for _, m := range []struct {
		name    string
		defines []string
	}{
		{"MUTANT=1", []string{"-DMUTANT=1"}},
		{"MUTANT=2", []string{"-DMUTANT=2"}},
		{"MUTANT=3", []string{"-DMUTANT=3"}},
		{"RECONFIG,MUTANT=4", []string{"-DRECONFIG", "-DMUTANT=4"}},
		{"RECONFIG,MUTANT=6", []string{"-DRECONFIG", "-DMUTANT=6"}},
	} {
		t.Run(m.name, func(t *testing.T) {
			out := run(t, m.defines...)
			if !strings.Contains(out, "assertion violated") {
				t.Fatalf("%v: no assertion violation found:\n%s", m.defines, out)
			}
		})
	}
}
