#!/usr/bin/env bash
# abba.sh compares two commits' Lock latency and lock+release throughput
# side by side in one sitting, as docs/performance.md reports them:
#
#	tests/bench/abba.sh <old commit> <new commit> [rounds, default 20]
#
# It builds tests/bench of both commits (in temporary worktrees) and runs
# BenchmarkLockRelease and BenchmarkPairs/callers=64, 2 s each, for the
# given number of rounds in ABBA order (the order of the two alternates
# every round, so that neither always runs first), then prints per
# commit the medians of Lock p50, pairs/s and CPU per pair, and the
# median and mean of the new/old pairs/s ratio within a round. Keep the
# machine otherwise quiet while it runs (about 12 s per round).
set -euo pipefail
old=${1:?old commit}
new=${2:?new commit}
rounds=${3:-20}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true; git -C "$root" worktree remove --force "$work/new" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
for v in old new; do
  git -C "$root" worktree add --detach "$work/$v" "${!v}" >/dev/null 2>&1
  (cd "$work/$v" && go test -c -o "$work/$v.test" ./tests/bench/)
done
out=$(mktemp "${TMPDIR:-/tmp}/abba-XXXXXX.txt")
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
  for v in $order; do
    (cd "$work/$v/tests/bench" && "$work/$v.test" -test.run '^$' -test.bench 'LockRelease|Pairs/callers=64' -test.benchtime=2s 2>&1) |
      awk -v v="$v" -v r="$r" '
        /^BenchmarkLockRelease/ { for (i = 1; i < NF; i++) if ($(i+1) == "lock-p50-µs") lock = $i }
        /^BenchmarkPairs\/callers=64/ { for (i = 1; i < NF; i++) { if ($(i+1) == "pairs/s") pairs = $i; if ($(i+1) == "cpu-µs/pair") cpu = $i } }
        END { print r, v, lock, pairs, cpu }' | tee -a "$out"
  done
done
echo "round commit lock-p50-µs pairs/s cpu-µs/pair: $out"
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'; }
for v in old new; do
  printf '%s (%s): Lock p50 %s µs, pairs/s@64 %s, CPU per pair %s µs (medians of %s rounds)\n' "$v" "${!v}" \
    "$(awk -v v=$v '$2 == v { print $3 }' "$out" | median)" \
    "$(awk -v v=$v '$2 == v { print $4 }' "$out" | median)" \
    "$(awk -v v=$v '$2 == v { print $5 }' "$out" | median)" "$rounds"
done
ratios=$(awk '{ p[$1, $2] = $4 } END { for (r = 1; (r, "old") in p; r++) print p[r, "new"] / p[r, "old"] }' "$out")
printf 'pairs/s new/old within a round: median %s, mean %s\n' \
  "$(echo "$ratios" | median)" "$(echo "$ratios" | awk '{ s += $1 } END { printf "%.3f", s / NR }')"
