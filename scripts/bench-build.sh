#!/usr/bin/env bash
# Benchmarks `docker build` through berthd against Debian's dockerd 20.10 side by side in one
# run (issue 7, "Checks"): the same docker CLI (Debian's /usr/bin/docker 20.10) drives
#   berthd   — the classic POST /build (DOCKER_BUILDKIT=0; berthd's builder runs independent
#              stages in parallel and keys its cache on content),
#   buildkit — dockerd's embedded BuildKit (DOCKER_BUILDKIT=1),
#   legacy   — dockerd's classic builder (DOCKER_BUILDKIT=0),
# on a 3-stage fixture (FROM a local busybox image, no registry; stages `a` and `b` do
# COPY/RUN work independently, the final stage COPYs --from both):
#   1. cold build (builder cache pruned and images removed before each, untimed)
#   2. fully cached rebuild (nothing changed)
#   3. one changed source file (a file stage `a` COPYs gets new content before each build)
#   4. the cold build of the same fixture with stage b's generator 16x heavier (50 busybox
#      seds over 256 KB lines instead of 16 KB: the fixture of sessions 6-8, printed with no
#      goal; see below)
#   5. a 200 MB context, cold, `COPY . /ctx/`: once as 4 files of 50 MB, once as 20000
#      files of 10 KB (the difference is the per-file overhead of upload, copy and commit)
# and, at the start of each round, the floor of each cold build: stage b's `RUN sh /gen.sh`
# alone, run on the host with the image's busybox (no builder, no container). It is the cold
# build's critical path (CPU-bound seds), so no builder can finish the cold build faster
# than it. With the heavy generator the floor alone was 0.73-0.84x of BuildKit's whole cold
# build: the 0.7x goal measured busybox, not the builder. The scored fixture's generator
# does the same work on 16 KB lines, so its floor is a small part of the build and the
# ratio measures what the builders add; the heavy case stays printed, with its floor.
# Every build runs with --network none: the private dockerd has no bridge (BuildKit's RUN
# fails with "network bridge not found" otherwise) and berthd's RUN steps have no network.
# Rounds alternate between the three builders (one build each per round) so a load change
# on a shared machine hits them alike; medians and the berthd/BuildKit ratio are printed
# next to the issue's goals (cold <= 0.7x, cached <= 0.5x, one change <= 0.7x).
#
# Usage (as root): scripts/bench-build.sh [ROUNDS]     (default 7 rounds per case)
#   BENCH_CONTEXT_ROUNDS=N (default 3) rounds of the 200 MB cases
#   BERTH_BIN_DIR=dir with berthd, berth-shim, berth-runtime (default: the release build)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${1:-7}"
CONTEXT_ROUNDS="${BENCH_CONTEXT_ROUNDS:-3}"
DOCKER=/usr/bin/docker
DOCKERD=/usr/sbin/dockerd

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-build.sh: run as root (daemons, containers, cgroups)" >&2
  exit 1
fi
for tool in python3 tar "$DOCKER" "$DOCKERD" /bin/busybox; do
  command -v "$tool" >/dev/null || {
    echo "bench-build.sh: $tool is missing (apt-get install docker.io busybox-static)" >&2
    exit 1
  }
done
BERTH_BIN_DIR="${BERTH_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/release}"
for bin in berthd berth-shim berth-runtime; do
  if [ ! -x "$BERTH_BIN_DIR/$bin" ]; then
    echo "bench: building the release binaries"
    cargo build --release -p berthd -p berth-shim-bin -p berth-runtime-bin
    break
  fi
done

# Short paths: shim sockets live under the exec roots and must fit in sun_path (108 bytes).
WORK="$(mktemp -d /tmp/bb-XXXXXX)"
CGROUP_PARENT="berth-bench-$(basename "$WORK")"
B_SOCK="$WORK/b.sock"
D_SOCK="$WORK/d.sock"
mkdir -p "$WORK/cli"
export DOCKER_CONFIG="$WORK/cli" DOCKER_CLI_HINTS=false
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_API_VERSION
B_PID=""
D_PID=""

cleanup() {
  set +e
  for sock in "$B_SOCK" "$D_SOCK"; do
    [ -S "$sock" ] || continue
    ids="$("$DOCKER" -H "unix://$sock" ps -aq 2>/dev/null)"
    [ -n "$ids" ] && "$DOCKER" -H "unix://$sock" rm -f $ids >/dev/null 2>&1
  done
  stop_pid "$B_PID"
  stop_pid "$D_PID"
  # Whatever still names our private roots (containerd, shims), then cgroups and mounts.
  for pid in $(grep -l -s -F "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
  done
  sleep 0.5
  # Depth 5: the memory hierarchy may nest the parent under the caller's own cgroup
  # (/sys/fs/cgroup/memory/<caller's path>/<parent>), as it does on this CI host.
  find /sys/fs/cgroup -maxdepth 5 -type d -name "$CGROUP_PARENT" 2>/dev/null |
    while read -r dir; do
      find "$dir" -depth -type d | while read -r d; do
        for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        rmdir "$d" 2>/dev/null
      done
    done
  grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

stop_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}

# start_daemon NAME: starts it detached, waits for /_ping, prints its PID.
start_daemon() {
  local name="$1" sock argv
  if [ "$name" = berthd ]; then
    sock="$B_SOCK"
    printf '{"cgroup-parent": "%s"}\n' "$CGROUP_PARENT" >"$WORK/berthd.json"
    argv="$BERTH_BIN_DIR/berthd -H unix://$sock --data-root $WORK/bd --exec-root $WORK/bx \
      --pidfile $WORK/berthd.pid --config-file $WORK/berthd.json"
  else
    sock="$D_SOCK"
    echo '{}' >"$WORK/dockerd.json"
    argv="$DOCKERD -H unix://$sock --data-root $WORK/dd --exec-root $WORK/dx \
      --pidfile $WORK/dockerd.pid --config-file $WORK/dockerd.json --iptables=false \
      --ip-masq=false --bridge=none --cgroup-parent $CGROUP_PARENT"
  fi
  python3 - "$sock" "$WORK/$name.log" $argv <<'EOF'
import socket, subprocess, sys, time
sock, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
out = open(log, "ab")
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                        start_new_session=True)
start = time.monotonic()
while time.monotonic() - start < 60:
    if proc.poll() is not None:
        sys.exit(f"{argv[0]} exited with {proc.returncode}; see {log}")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        if s.recv(64).startswith(b"HTTP/1.1 200"):
            print(proc.pid)
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.01)
sys.exit(f"{argv[0]} did not answer /_ping within 60 s; see {log}")
EOF
}

median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(round(statistics.median(v)) if v else "n/a")' "$@"; }
ratio() { python3 -c 'import sys; a,b=sys.argv[1],sys.argv[2]; print("n/a" if "n/a" in (a,b) or float(b)==0 else f"{float(a)/float(b):.2f}x")' "$1" "$2"; }
minus() { python3 -c 'import sys; a,b=sys.argv[1],sys.argv[2]; print("n/a" if "n/a" in (a,b) else int(float(a)-float(b)))' "$1" "$2"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "== bench-build: $(date -u +'%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "   berthd from $BERTH_BIN_DIR ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), dockerd $("$DOCKERD" --version | cut -d' ' -f3 | tr -d ,), CLI $("$DOCKER" --version | cut -d' ' -f3 | tr -d ,)"

B_PID="$(start_daemon berthd)" || { tail -20 "$WORK/berthd.log"; exit 1; }
D_PID="$(start_daemon dockerd)" || { tail -20 "$WORK/dockerd.log"; exit 1; }

# busybox:latest from busybox-static in both (docker import, no registry).
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp"
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$ROOTFS/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
tar -C "$ROOTFS" -cf "$WORK/busybox.tar" .
for sock in "$D_SOCK" "$B_SOCK"; do
  "$DOCKER" -H "unix://$sock" import --change 'CMD ["sh"]' "$WORK/busybox.tar" busybox:latest >/dev/null
done

# The 3-stage fixture: stage a copies 300 small sources and archives them, stage b runs a
# generator script, the final stage takes both results and its own sources.
FIX="$WORK/fixture"
mkdir -p "$FIX/a/src" "$FIX/b" "$FIX/app"
for i in $(seq 300); do
  head -c $(( (i % 7 + 1) * 1500 )) /dev/urandom | base64 >"$FIX/a/src/file$i.txt"
done
echo "initial" >"$FIX/a/src/changed.txt"
# gen_script BLOCKS: stage b's generator, 50 files of BLOCKS x 4 KB through busybox sed,
# then gzip.
gen_script() {
  cat <<EOF
set -e
mkdir -p "\$1"
for i in \$(seq 50); do
  dd if=/dev/zero bs=4k count=$1 2>/dev/null | sed "s/^/\$i/" >"\$1/data\$i"
done
gzip -1 "\$1"/data*
EOF
}
gen_script 4 >"$FIX/b/gen.sh"
for i in $(seq 20); do echo "app file $i" >"$FIX/app/app$i.conf"; done
cat >"$FIX/Dockerfile" <<'EOF'
FROM busybox:latest AS a
WORKDIR /src
COPY a/ ./
RUN find . -type f | sort | xargs cat | sha256sum >/a.sum && tar -cf /a.tar .
RUN mkdir -p /out && cp /a.sum /a.tar /out/ && wc -c /out/a.tar

FROM busybox:latest AS b
COPY b/gen.sh /gen.sh
RUN sh /gen.sh /out
ENV STAGE=b
RUN ls -l /out >/out/listing

FROM busybox:latest
COPY --from=a /out/ /app/a/
COPY --from=b /out/ /app/b/
COPY app/ /app/
WORKDIR /app
LABEL bench=build
CMD ["sh", "-c", "ls /app"]
EOF
# The same fixture with the heavy generator (case 4).
HEAVY="$WORK/fixture-heavy"
cp -r "$FIX" "$HEAVY"
gen_script 64 >"$HEAVY/b/gen.sh"

BUILDERS="berthd buildkit legacy"
# floor FIXTURE: prints the milliseconds of its stage b's RUN on the host (see the header).
floor() {
  local start end
  rm -rf "$WORK/floor"
  start=$(now_ms)
  PATH="$ROOTFS/bin" "$ROOTFS/bin/sh" "$1/b/gen.sh" "$WORK/floor" >/dev/null 2>&1 || {
    echo fail
    return
  }
  end=$(now_ms)
  echo $(( end - start ))
}
# build NAME CONTEXT TAG: one timed build; prints milliseconds, or "fail" (log kept).
build() {
  local name="$1" ctx="$2" tag="$3" sock="$D_SOCK" kit=0 start end
  case "$name" in
    berthd) sock="$B_SOCK" ;;
    buildkit) kit=1 ;;
  esac
  start=$(now_ms)
  if DOCKER_BUILDKIT=$kit "$DOCKER" -H "unix://$sock" build --network none -t "$tag" "$ctx" \
    >"$WORK/build-$name.log" 2>&1; then
    end=$(now_ms)
    echo $(( end - start ))
  else
    echo fail
  fi
}
# cold NAME: untimed; no image built from the fixtures nor build cache is left.
cold() {
  local sock="$D_SOCK"
  [ "$1" = berthd ] && sock="$B_SOCK"
  "$DOCKER" -H "unix://$sock" image rm -f "bench-$1:latest" "ctx-$1:latest" "heavy-$1:latest" \
    >/dev/null 2>&1 || true
  "$DOCKER" -H "unix://$sock" image prune -f >/dev/null 2>&1 || true
  "$DOCKER" -H "unix://$sock" builder prune -af >/dev/null 2>&1 || true
}

declare -A T
record() { # case builder value
  local v="$3"
  if [ "$v" = fail ]; then
    echo "   $2 fails in case $1:" >&2
    tail -5 "$WORK/build-$2.log" | sed 's/^/     /' >&2
  else
    T["$1/$2"]="${T["$1/$2"]:-} $v"
  fi
}

for name in $BUILDERS; do # a first build each: fails early, and warms page cache alike
  cold "$name"
  v="$(build "$name" "$FIX" "bench-$name")"
  [ "$v" = fail ] && { echo "$name cannot build the fixture:"; cat "$WORK/build-$name.log"; exit 1; }
done
for round in $(seq "$ROUNDS"); do
  record floor host "$(floor "$FIX")"
  record floor-heavy host "$(floor "$HEAVY")"
  for name in $BUILDERS; do
    cold "$name"
    record cold "$name" "$(build "$name" "$FIX" "bench-$name")"
    record cached "$name" "$(build "$name" "$FIX" "bench-$name")"
    echo "round $round $name" >"$FIX/a/src/changed.txt"
    record changed "$name" "$(build "$name" "$FIX" "bench-$name")"
    cold "$name"
    record cold-heavy "$name" "$(build "$name" "$HEAVY" "heavy-$name")"
  done
  echo "   round $round/$ROUNDS done, load $(cut -d' ' -f1 /proc/loadavg)"
done

# The 200 MB contexts (random bytes, so no compression helps anyone).
BIG="$WORK/ctx-big"
SMALL="$WORK/ctx-small"
mkdir -p "$BIG" "$SMALL"
for i in 1 2 3 4; do head -c $((50 * 1024 * 1024)) /dev/urandom >"$BIG/blob$i"; done
for d in $(seq 0 99); do
  mkdir -p "$SMALL/d$d"
  head -c $((200 * 10240)) /dev/urandom | split -b 10240 -a 3 - "$SMALL/d$d/f"
done
for ctx in "$BIG" "$SMALL"; do
  printf 'FROM busybox:latest\nCOPY . /ctx/\n' >"$ctx/Dockerfile"
done
for round in $(seq "$CONTEXT_ROUNDS"); do
  for name in $BUILDERS; do
    cold "$name"
    record ctx-big "$name" "$(build "$name" "$BIG" "ctx-$name")"
    cold "$name"
    record ctx-small "$name" "$(build "$name" "$SMALL" "ctx-$name")"
  done
  echo "   context round $round/$CONTEXT_ROUNDS done, load $(cut -d' ' -f1 /proc/loadavg)"
done

med() { median ${T["$1/$2"]:-}; }
echo
echo "| case (median ms) | berthd | BuildKit | legacy | berthd/BuildKit | berthd/legacy | goal | met |"
echo "|---|---:|---:|---:|---:|---:|---|---|"
row() { # case label goal
  local b k l r met
  b="$(med "$1" berthd)"; k="$(med "$1" buildkit)"; l="$(med "$1" legacy)"
  r="$(ratio "$b" "$k")"
  if [ -z "$3" ]; then met="-"
  elif [ "$r" = n/a ]; then met="n/a"
  else met=$(python3 -c "print('yes' if float('${r%x}') <= $3 else 'no')"); fi
  echo "| $2 | $b | $k | $l | $r | $(ratio "$b" "$l") | ${3:+<= ${3}x} | $met |"
}
row cold "cold 3-stage build" 0.7
row cached "fully cached rebuild" 0.5
row changed "one changed source file" 0.7
row cold-heavy "cold 3-stage build, generator 16x heavier (sessions 6-8)" ""
row ctx-big "200 MB context, 4 files (cold COPY . )" ""
row ctx-small "200 MB context, 20000 files (cold COPY . )" ""
echo
# floor_line CASE FLOORKEY: the fastest floor run against the medians of that cold case.
floor_line() {
  local f
  f="$(python3 -c 'import sys; print(min(int(x) for x in sys.argv[1:]) if sys.argv[1:] else "n/a")' ${T["$2/host"]:-})"
  echo "floor of $1: stage b's RUN alone on the host takes $f ms (fastest run), \
$(ratio "$f" "$(med "$1" buildkit)") of BuildKit's build; berthd's time above it: \
$(minus "$(med "$1" berthd)" "$f") ms, BuildKit's: $(minus "$(med "$1" buildkit)" "$f") ms"
}
floor_line cold floor
floor_line cold-heavy floor-heavy
for name in $BUILDERS; do
  echo "per-file overhead $name: 20000 files take $(ratio "$(med ctx-small "$name")" "$(med ctx-big "$name")") the time of 4 files"
done
echo "runs (ms):"
for key in $(printf '%s\n' "${!T[@]}" | sort); do echo "   $key:${T[$key]}"; done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
