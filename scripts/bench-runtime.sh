#!/usr/bin/env bash
# Benchmarks berth-runtime against runc and crun in the same run (issue 2, "Benchmark"):
# `run` of `true` in a busybox bundle, then create / start / delete separately, with hyperfine.
# Prints each median, the ratios berth/runc and berth/crun, and berth-runtime's peak RSS.
#
# Usage (as root): scripts/bench-runtime.sh [RUNS]      (default RUNS=50)
#   BENCH_ROUNDS=N (default 5): each case's RUNS are split into N rounds that alternate between
#   the runtimes, so a load change on a shared machine hits all three alike; medians are over
#   all RUNS.
#   BERTH_RUNTIME=/path/to/berth-runtime overrides the binary (default: the release build).
#
# crun 1.8 refuses a hybrid cgroup layout (v1 controllers plus a cgroup2 mount at
# /sys/fs/cgroup/unified), so the whole benchmark re-executes itself inside `unshare -m` and
# unmounts /sys/fs/cgroup/unified in that private mount namespace only: all three runtimes
# then see the same pure v1 layout, and the host is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-50}"
ROUNDS="${BENCH_ROUNDS:-5}"
[ "$ROUNDS" -gt "$RUNS" ] && ROUNDS="$RUNS"
PER_ROUND=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
WARMUP=5

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-runtime.sh: run as root (containers need namespaces and cgroups)" >&2
  exit 1
fi

if [ -z "${BERTH_BENCH_INNER:-}" ]; then
  missing=()
  command -v hyperfine >/dev/null || missing+=(hyperfine)
  command -v runc >/dev/null || missing+=(runc)
  command -v crun >/dev/null || missing+=(crun)
  [ -x /usr/bin/time ] || missing+=(time)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  command -v python3 >/dev/null || missing+=(python3)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  BERTH_RUNTIME="${BERTH_RUNTIME:-${CARGO_TARGET_DIR:-$PWD/target}/release/berth-runtime}"
  if [ ! -x "$BERTH_RUNTIME" ]; then
    echo "bench: building berth-runtime (release)"
    cargo build --release --bin berth-runtime
  fi
  export BERTH_RUNTIME BERTH_BENCH_INNER=1
  exec unshare -m --propagation private "$0" "$@"
fi

# Inside the private mount namespace from here on.
if mountpoint -q /sys/fs/cgroup/unified; then
  umount /sys/fs/cgroup/unified
fi

WORK="$(mktemp -d /tmp/berth-bench.XXXXXX)"
cleanup() {
  for rt in berth runc crun; do
    for id in bench-run bench-step; do
      "$(binary "$rt")" --root "$WORK/root-$rt" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$WORK"
}
binary() {
  case "$1" in
    berth) echo "$BERTH_RUNTIME" ;;
    runc) command -v runc ;;
    crun) command -v crun ;;
  esac
}
trap cleanup EXIT

# A busybox bundle whose process is `true`.
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE/rootfs/bin"
cp /bin/busybox "$BUNDLE/rootfs/bin/busybox"
ln -s busybox "$BUNDLE/rootfs/bin/true"
ln -s busybox "$BUNDLE/rootfs/bin/sh"
(cd "$BUNDLE" && runc spec)
python3 - "$BUNDLE/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["terminal"] = False
config["process"]["args"] = ["true"]
json.dump(config, open(path, "w"), indent=2)
EOF

RUNTIMES=(berth runc crun)
for rt in "${RUNTIMES[@]}"; do mkdir -p "$WORK/root-$rt"; done

echo "== versions"
"$BERTH_RUNTIME" --version 2>/dev/null | head -1 || echo "berth-runtime (no --version)"
runc --version | head -1
crun --version | head -1
echo

bench() { # bench STEP RUNTIME ROUND -> writes $WORK/STEP-RUNTIME-ROUND.json
  local step="$1" rt="$2" round="$3" bin root
  bin="$(binary "$rt")"
  root="$WORK/root-$rt"
  local base="$bin --root $root"
  local json="$WORK/$step-$rt-$round.json"
  local RUNS="$PER_ROUND" WARMUP="$WARMUP"
  [ "$round" -gt 1 ] && WARMUP=1
  case "$step" in
    run)
      hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
        -n "$rt run" "$base run --bundle $BUNDLE bench-run" ;;
    create)
      hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
        --prepare "sh -c '$base delete --force bench-step >/dev/null 2>&1; true'" \
        -n "$rt create" "$base create --bundle $BUNDLE bench-step" ;;
    start)
      hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
        --prepare "sh -c '$base delete --force bench-step >/dev/null 2>&1; $base create --bundle $BUNDLE bench-step'" \
        -n "$rt start" "$base start bench-step" ;;
    delete)
      hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$json" \
        --prepare "sh -c '$base delete --force bench-step >/dev/null 2>&1; $base create --bundle $BUNDLE bench-step'" \
        -n "$rt delete" "$base delete bench-step" ;;
  esac
  "$bin" --root "$root" delete --force bench-step >/dev/null 2>&1 || true
}

echo "== load before: $(cut -d' ' -f1-3 /proc/loadavg)"
STEPS=(run create start delete)
for step in "${STEPS[@]}"; do
  echo "== $step ($ROUNDS rounds of $PER_ROUND runs, alternating berth/runc/crun)"
  for round in $(seq "$ROUNDS"); do
    for rt in "${RUNTIMES[@]}"; do
      # hyperfine's outlier warnings are expected on a shared machine; other errors are shown.
      bench "$step" "$rt" "$round" >/dev/null 2>"$WORK/hyperfine.err" || { cat "$WORK/hyperfine.err" >&2; exit 1; }
    done
  done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Peak RSS of each runtime's `run` process (max over 10 runs), from /usr/bin/time -v.
peak_rss() {
  local rt="$1" bin max=0 kb
  bin="$(binary "$rt")"
  for _ in $(seq 10); do
    kb=$(/usr/bin/time -v "$bin" --root "$WORK/root-$rt" run --bundle "$BUNDLE" bench-rss 2>&1 >/dev/null \
      | awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}')
    [ "${kb:-0}" -gt "$max" ] && max="$kb"
  done
  echo "$max"
}
RSS_BERTH=$(peak_rss berth)
RSS_RUNC=$(peak_rss runc)
RSS_CRUN=$(peak_rss crun)

echo
python3 - "$WORK" "$RSS_BERTH" "$RSS_RUNC" "$RSS_CRUN" <<'EOF'
import glob, json, statistics, sys
work, rss = sys.argv[1], dict(zip(["berth", "runc", "crun"], sys.argv[2:5]))
def median_ms(step, rt):
    times = []
    for path in glob.glob(f"{work}/{step}-{rt}-*.json"):
        times += json.load(open(path))["results"][0]["times"]
    return statistics.median(times) * 1000
print(f"{'step':<8}{'berth ms':>10}{'runc ms':>10}{'crun ms':>10}{'berth/runc':>12}{'berth/crun':>12}")
for step in ["run", "create", "start", "delete"]:
    b, r, c = (median_ms(step, rt) for rt in ["berth", "runc", "crun"])
    print(f"{step:<8}{b:>10.2f}{r:>10.2f}{c:>10.2f}{b / r:>12.2f}{b / c:>12.2f}")
print()
print("peak RSS of `run` (max of 10): " + ", ".join(f"{k} {int(v) / 1024:.1f} MiB" for k, v in rss.items()))
print("goals (issue 2): run berth/crun <= 0.80, berth/runc <= 0.40, berth peak RSS < 5 MB")
EOF
