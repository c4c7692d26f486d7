#!/usr/bin/env bash
# Benchmarks berthd against Debian's dockerd 20.10 (+ containerd 1.6) side by side in one run
# (issue 4, "Checks"), both as private instances, both driven by the same docker CLI 28:
#   1. daemon start to first /_ping (ms; median of BENCH_STARTS starts each)
#   2. idle daemon RSS: berthd vs dockerd + containerd (after start and an image import)
#   3. `docker run --rm busybox true`, with and without `--network none` (hyperfine, rounds
#      alternating between the daemons so a load change on a shared machine hits both alike)
#   4. 50 containers started concurrently with `docker run -d` (wall time; BENCH_CONCURRENT)
#   5. per-container shim RSS with those 50 running: berth-shim vs containerd-shim-runc-v2
# and the networking checks of issue 5:
#   6. the cost the default bridge adds to `run --rm true` over `--network none` (from 3.)
#   7. container-to-container TCP throughput on a user-defined network (tests/netperf,
#      BENCH_MBYTES MiB per transfer, its own timing) vs the same over a bare veth pair
#      between two network namespaces
#   8. `docker network connect` of a running container (hyperfine, disconnected before each)
# and prints each berthd/dockerd ratio next to the goal of issues 4 and 5 (0.25x, 0.3x,
# 50 ms, 15 MB, 2 MB; 0.5x, within 10% of the veth pair). A step berthd cannot do yet is
# reported as "fails" with its error, and the remaining steps still run.
#
# Usage (as root): scripts/bench-engine.sh [RUNS]       (default RUNS=30 per daemon and case)
#   BENCH_ROUNDS=N (default 5), BENCH_STARTS=N (default 5), BENCH_CONCURRENT=N (default 50),
#   BENCH_MBYTES=N (default 1024, per throughput transfer), BENCH_NETWORK=0 skips 7. and 8.
#   BERTH_BIN_DIR=dir with berthd, berth-shim, berth-runtime (default: the release build)
#
# Each daemon runs in a private network namespace (`ip netns add`, entered with nsenter) and
# a private mount namespace whose /sys/class/net shows that namespace's devices, so dockerd
# keeps its real default bridge with its iptables rules (iptables-nft, in the namespace's
# own nftables) and berthd its bridge and nft tables, and neither touches the host's
# devices or rules. Both pay the same few ms of nsenter/unshare/mount at start.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-30}"
ROUNDS="${BENCH_ROUNDS:-5}"
STARTS="${BENCH_STARTS:-5}"
CONCURRENT="${BENCH_CONCURRENT:-50}"
MBYTES="${BENCH_MBYTES:-1024}"
NETWORK="${BENCH_NETWORK:-1}"
[ "$ROUNDS" -gt "$RUNS" ] && ROUNDS="$RUNS"
PER_ROUND=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
DOCKER=/usr/local/bin/docker
DOCKERD=/usr/sbin/dockerd

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-engine.sh: run as root (daemons, containers, cgroups)" >&2
  exit 1
fi
for tool in hyperfine python3 tar ip nsenter unshare "$DOCKER" "$DOCKERD" /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "bench-engine.sh: $tool is missing" >&2; exit 1; }
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
WORK="$(mktemp -d /tmp/be-XXXXXX)"
CGROUP_PARENT="berth-bench-$(basename "$WORK")"
B_SOCK="$WORK/b.sock"
D_SOCK="$WORK/d.sock"
mkdir -p "$WORK/cli"
export DOCKER_CONFIG="$WORK/cli" DOCKER_CLI_HINTS=false
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_API_VERSION
B_PID=""
D_PID=""
SUFFIX="$(basename "$WORK" | cut -d- -f2)"
B_NS="be-b-$SUFFIX"   # berthd's network namespace
D_NS="be-d-$SUFFIX"   # dockerd's
V1_NS="be-v1-$SUFFIX" # the bare veth pair's two ends
V2_NS="be-v2-$SUFFIX"
ALL_NS="$B_NS $D_NS $V1_NS $V2_NS"

cleanup() {
  set +e
  for sock in "$B_SOCK" "$D_SOCK"; do
    [ -S "$sock" ] || continue
    ids="$("$DOCKER" -H "unix://$sock" ps -aq 2>/dev/null)"
    [ -n "$ids" ] && "$DOCKER" -H "unix://$sock" rm -f $ids >/dev/null 2>&1
  done
  stop_pid "$B_PID"
  stop_pid "$D_PID"
  # Whatever still names our private roots (containerd, shims) or still runs in one of our
  # network namespaces, then the namespaces (with every bridge, veth and rule in them),
  # cgroups and mounts. The daemons' own mounts live in their private mount namespaces,
  # which end with their last process.
  for pid in $(grep -l -s -F "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
  done
  for ns in $ALL_NS; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  sleep 0.5
  for ns in $ALL_NS; do
    [ -e "/run/netns/$ns" ] && ip netns del "$ns" 2>/dev/null
  done
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

# nsx.sh NETNS CMD...: CMD (exec'd, same PID) in network namespace NETNS and a private mount
# namespace (slave of the host's) with a sysfs of that network namespace over /sys/class/net
# and /sys/devices/virtual/net (/sys/fs/cgroup stays the host's), so bridge and veth files
# under /sys are the namespace's own.
cat >"$WORK/nsx.sh" <<'EOF'
#!/bin/sh
ns="$1"; shift
exec nsenter --net="/run/netns/$ns" unshare -m --propagation slave sh -c '
t=$(mktemp -d) && mount -t sysfs sysfs "$t" &&
mount --bind "$t/class/net" /sys/class/net &&
mount --bind "$t/devices/virtual/net" /sys/devices/virtual/net &&
umount -l "$t" && rmdir "$t" && { [ -z "$NSX_STAMP" ] || date +%s%N >"$NSX_STAMP"; } &&
exec "$@"' nsx "$@"
EOF
chmod +x "$WORK/nsx.sh"
for ns in "$B_NS" "$D_NS"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done

# start_daemon NAME: starts it detached, waits for /_ping, prints "PID MS" where MS is the
# time from the daemon's exec (stamped by nsx.sh right before it, so the namespace set-up,
# several execs and mounts that take 80-450 ms on a loaded host, is left out for both) to
# the first 200 from /_ping (polled every 1 ms over the unix socket).
start_daemon() {
  local name="$1" sock argv
  if [ "$name" = berthd ]; then
    sock="$B_SOCK"
    printf '{"cgroup-parent": "%s"}\n' "$CGROUP_PARENT" >"$WORK/berthd.json"
    argv="$WORK/nsx.sh $B_NS $BERTH_BIN_DIR/berthd -H unix://$sock --data-root $WORK/bd --exec-root $WORK/bx \
      --pidfile $WORK/berthd.pid --config-file $WORK/berthd.json"
  else
    sock="$D_SOCK"
    echo '{}' >"$WORK/dockerd.json"
    argv="$WORK/nsx.sh $D_NS $DOCKERD -H unix://$sock --data-root $WORK/dd --exec-root $WORK/dx \
      --pidfile $WORK/dockerd.pid --config-file $WORK/dockerd.json --cgroup-parent $CGROUP_PARENT"
  fi
  rm -f "$WORK/$name.stamp"
  NSX_STAMP="$WORK/$name.stamp" python3 - "$sock" "$WORK/$name.log" $argv <<'EOF'
import os, socket, subprocess, sys, time
sock, log, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
out = open(log, "ab")
start = time.monotonic()
proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                        start_new_session=True)
while time.monotonic() - start < 60:
    if proc.poll() is not None:
        sys.exit(f"{argv[0]} exited with {proc.returncode}; see {log}")
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        if s.recv(64).startswith(b"HTTP/1.1 200"):
            answered = time.time_ns()
            stamp = int(open(os.environ["NSX_STAMP"]).read())
            print(proc.pid, round((answered - stamp) / 1e6, 1))
            sys.exit(0)
    except OSError:
        pass
    finally:
        s.close()
    time.sleep(0.001)
sys.exit(f"{argv[0]} did not answer /_ping within 60 s; see {log}")
EOF
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(round(statistics.median(v),1) if v else "n/a")' "$@"; }
ratio() { python3 -c 'import sys; a,b=sys.argv[1],sys.argv[2]; print("n/a" if "n/a" in (a,b) or float(b)==0 else f"{float(a)/float(b):.2f}x")' "$1" "$2"; }

echo "== bench-engine: $(date -u +'%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "   berthd from $BERTH_BIN_DIR ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), dockerd $("$DOCKERD" --version | cut -d' ' -f3 | tr -d ,)"

# 1. Start to first /_ping, alternating daemons; the last start of each stays up.
b_ms=(); d_ms=()
for i in $(seq "$STARTS"); do
  read -r B_PID ms < <(start_daemon berthd) || true
  [ -n "$B_PID" ] || { echo "berthd did not start; its log:"; tail -20 "$WORK/berthd.log"; exit 1; }
  b_ms+=("$ms")
  read -r D_PID ms < <(start_daemon dockerd) || true
  [ -n "$D_PID" ] || { echo "dockerd did not start; its log:"; tail -20 "$WORK/dockerd.log"; exit 1; }
  d_ms+=("$ms")
  if [ "$i" -lt "$STARTS" ]; then stop_pid "$B_PID"; stop_pid "$D_PID"; B_PID=""; D_PID=""; fi
done
B_START="$(median "${b_ms[@]}")"; D_START="$(median "${d_ms[@]}")"
echo "start to first /_ping (median of $STARTS): berthd $B_START ms, dockerd $D_START ms (berthd runs: ${b_ms[*]})"

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
IMPORT_OK=1
for sock in "$D_SOCK" "$B_SOCK"; do
  if ! err="$("$DOCKER" -H "unix://$sock" import --change 'CMD ["sh"]' "$WORK/busybox.tar" busybox:latest 2>&1 >/dev/null)"; then
    echo "import into $sock fails: $err"; IMPORT_OK=0
  fi
done

# 2. Idle RSS, a few seconds after start and import.
sleep 3
CONTAINERD_PID="$(cat "$WORK/dx/containerd/containerd.pid" 2>/dev/null || pgrep -P "$D_PID" containerd | head -1)"
B_RSS=$(( $(rss_kib "$B_PID") / 1024 ))
D_RSS=$(( ($(rss_kib "$D_PID") + $(rss_kib "$CONTAINERD_PID")) / 1024 ))
echo "idle RSS: berthd $B_RSS MiB, dockerd+containerd $D_RSS MiB (dockerd $(( $(rss_kib "$D_PID") / 1024 )), containerd $(( $(rss_kib "$CONTAINERD_PID") / 1024 )))"

# 3. docker run --rm busybox true, with the default network and with --network none, both
# daemons: the four commands alternate inside each hyperfine round, so each round measures
# all four under the same load. 6. (the bridge's added cost) is the median over rounds of
# each round's median(default) - median(none), per daemon, not a difference of medians taken
# from different stretches of time (which is noise when the load moves).
run_cases() {
  for sock in "$B_SOCK" "$D_SOCK"; do
    for flags in "" "--network none"; do
      if ! err="$("$DOCKER" -H "unix://$sock" run --rm $flags busybox true 2>&1)"; then
        echo "run --rm $flags busybox true against $(basename "$sock"): fails: $err" >&2
        echo "n/a n/a n/a n/a n/a n/a"; return
      fi
    done
  done
  for round in $(seq "$ROUNDS"); do
    hyperfine -N --style none --warmup 2 --runs "$PER_ROUND" \
      --export-json "$WORK/run-$round.json" \
      "$DOCKER -H unix://$B_SOCK run --rm busybox true" \
      "$DOCKER -H unix://$B_SOCK run --rm --network none busybox true" \
      "$DOCKER -H unix://$D_SOCK run --rm busybox true" \
      "$DOCKER -H unix://$D_SOCK run --rm --network none busybox true" >/dev/null
  done
  python3 - "$WORK" <<'EOF'
import glob, json, statistics, sys
work = sys.argv[1]
times = {i: [] for i in range(4)}
added = {0: [], 2: []}
for path in sorted(glob.glob(f"{work}/run-*.json")):
    results = json.load(open(path))["results"]
    for i, result in enumerate(results):
        times[i] += result["times"]
    for i in added:
        added[i].append(statistics.median(results[i]["times"]) - statistics.median(results[i + 1]["times"]))
ms = lambda v: round(v * 1000, 1)
print(*(ms(statistics.median(times[i])) for i in range(4)),
      ms(statistics.median(added[0])), ms(statistics.median(added[2])))
EOF
}
RUN_RESULT="n/a n/a n/a n/a n/a n/a"
[ "$IMPORT_OK" = 1 ] && RUN_RESULT="$(run_cases)"
read -r B_RUN B_NONE D_RUN D_NONE B_ADDED D_ADDED <<<"$RUN_RESULT"
echo "run --rm busybox true (median ms of $RUNS): berthd $B_RUN, dockerd $D_RUN; with --network none: berthd $B_NONE, dockerd $D_NONE; the bridge adds (median of per-round differences): berthd $B_ADDED, dockerd $D_ADDED"

# 7. Container-to-container TCP throughput with tests/netperf (busybox nc truncates bulk
# streams): one static binary, built here with rustc (std only, +crt-static) and bind-mounted
# into busybox containers. A receiver loops `netperf recv` (one connection each, answering
# with the byte count); the sender runs in a long-lived client container through `exec`
# (so no container start is timed) and prints MiB/s from connect to the receiver's count.
# The bare veth pair runs the same binary in two network namespaces.
NETPERF="$WORK/netperf"
SERVE="while :; do /netperf recv 5001 >/dev/null; done"
veth_pair() {
  ip netns add "$V1_NS" && ip netns add "$V2_NS" &&
    ip link add "bev1$SUFFIX" netns "$V1_NS" type veth peer name "bev2$SUFFIX" netns "$V2_NS" &&
    ip -n "$V1_NS" addr add 10.231.0.1/24 dev "bev1$SUFFIX" &&
    ip -n "$V2_NS" addr add 10.231.0.2/24 dev "bev2$SUFFIX" &&
    for ns in "$V1_NS" "$V2_NS"; do
      ip -n "$ns" link set lo up && ip -n "$ns" link set "bev${ns:4:1}$SUFFIX" up || return 1
    done
}
# throughput_once TARGET: one transfer (veth | berthd | dockerd), MiB/s or n/a; retried once
# if the receiver was between two connections.
throughput_once() {
  local target="$1" out
  for _ in 1 2; do
    case "$target" in
      veth) out="$(ip netns exec "$V2_NS" "$NETPERF" send 10.231.0.1 5001 "$MBYTES" 2>&1)" ;;
      *) local sock ip
         sock="$B_SOCK"; [ "$target" = dockerd ] && sock="$D_SOCK"
         ip="$("$DOCKER" -H "unix://$sock" inspect -f '{{(index .NetworkSettings.Networks "benchnet").IPAddress}}' srv)"
         out="$("$DOCKER" -H "unix://$sock" exec cli /netperf send "$ip" 5001 "$MBYTES" 2>&1)" ;;
    esac
    [[ "$out" =~ ^[0-9]+(\.[0-9]+)?$ ]] && { echo "$out"; return; }
    sleep 0.3
  done
  echo "throughput over $target fails: $out" >&2
  echo n/a
}
VETH_TP="n/a"; B_TP="n/a"; D_TP="n/a"; B_CONN="n/a"; D_CONN="n/a"
if [ "$IMPORT_OK" = 1 ] && [ "$NETWORK" = 1 ]; then
  NET_OK=1
  veth_pair || { echo "bare veth pair: setup fails" >&2; NET_OK=0; }
  rustc --edition 2021 -O -C target-feature=+crt-static -o "$NETPERF" tests/netperf/src/main.rs ||
    { echo "netperf: build fails" >&2; NET_OK=0; }
  [ "$NET_OK" = 1 ] && ip netns exec "$V1_NS" /bin/sh -c "while :; do $NETPERF recv 5001 >/dev/null; done" >/dev/null 2>&1 &
  for sock in "$B_SOCK" "$D_SOCK"; do
    if ! err="$({ "$DOCKER" -H "unix://$sock" network create benchnet &&
        "$DOCKER" -H "unix://$sock" network create benchconn &&
        "$DOCKER" -H "unix://$sock" run -d --name srv --network benchnet -v "$NETPERF:/netperf:ro" busybox sh -c "$SERVE" &&
        "$DOCKER" -H "unix://$sock" run -d --name cli --network benchnet -v "$NETPERF:/netperf:ro" busybox sleep 100000 &&
        "$DOCKER" -H "unix://$sock" run -d --name conn busybox sleep 1000 &&
        "$DOCKER" -H "unix://$sock" network connect benchconn conn; } 2>&1 >/dev/null)"; then
      echo "network set-up against $(basename "$sock") fails: $err" >&2; NET_OK=0
    fi
  done
  if [ "$NET_OK" = 1 ]; then
    sleep 0.5
    v=(); b=(); d=()
    for round in $(seq "$ROUNDS"); do
      v+=("$(throughput_once veth)"); b+=("$(throughput_once berthd)"); d+=("$(throughput_once dockerd)")
    done
    nums() { for x in "$@"; do [ "$x" != n/a ] && echo "$x"; done; }
    VETH_TP="$(median $(nums "${v[@]}"))"; B_TP="$(median $(nums "${b[@]}"))"; D_TP="$(median $(nums "${d[@]}"))"
    echo "c2c TCP throughput (netperf, MiB/s, median of $ROUNDS x $MBYTES MiB): bare veth $VETH_TP (${v[*]}), berthd $B_TP (${b[*]}), dockerd $D_TP (${d[*]}); berthd/veth $(ratio "$B_TP" "$VETH_TP")"
    # 8. network connect, disconnected before each run (hyperfine's --prepare).
    for round in $(seq "$ROUNDS"); do
      hyperfine -N --style none --runs "$PER_ROUND" --export-json "$WORK/conn-$round.json" \
        --prepare "$DOCKER -H unix://$B_SOCK network disconnect benchconn conn" \
        "$DOCKER -H unix://$B_SOCK network connect benchconn conn" \
        --prepare "$DOCKER -H unix://$D_SOCK network disconnect benchconn conn" \
        "$DOCKER -H unix://$D_SOCK network connect benchconn conn" >/dev/null || break
    done
    read -r B_CONN D_CONN < <(python3 - "$WORK" <<'EOF'
import glob, json, statistics, sys
times = {0: [], 1: []}
for path in glob.glob(f"{sys.argv[1]}/conn-*.json"):
    for i, result in enumerate(json.load(open(path))["results"]):
        times[i] += result["times"]
print(*(round(statistics.median(t) * 1000, 1) if t else "n/a" for t in times.values()))
EOF
)
    echo "network connect of a running container (median ms of $RUNS): berthd $B_CONN, dockerd $D_CONN"
  fi
  for sock in "$B_SOCK" "$D_SOCK"; do
    "$DOCKER" -H "unix://$sock" rm -f srv cli conn >/dev/null 2>&1
    "$DOCKER" -H "unix://$sock" network rm benchnet benchconn >/dev/null 2>&1
  done
fi

# 4. N concurrent `run -d`, wall time; 5. shim RSS with them running.
concurrent() {
  local sock="$1" start end failed=0 pids=()
  start=$(date +%s%N)
  for i in $(seq "$CONCURRENT"); do
    "$DOCKER" -H "unix://$sock" run -d --network none busybox sleep 1000 >"$WORK/c.$i.out" 2>&1 &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
  end=$(date +%s%N)
  if [ "$failed" -gt 0 ]; then
    echo "$CONCURRENT concurrent run -d against $(basename "$sock"): $failed failed, e.g. $(grep -hv '^[0-9a-f]\{64\}$' "$WORK"/c.*.out | head -1)" >&2
    echo "n/a"
  else
    echo $(( (end - start) / 1000000 ))
  fi
}
shim_rss() {
  # median VmRSS (KiB) of processes whose exe is $1 and whose command line names $2
  local exe="$1" root="$2" values=()
  for pid in $(grep -l -s -F "$root" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null | xargs -r basename)" = "$exe" ] && values+=("$(rss_kib "$pid")")
  done
  echo "${#values[@]} $(median "${values[@]}")"
}
B_CONC="n/a"; D_CONC="n/a"; B_SHIM="0 n/a"; D_SHIM="0 n/a"
if [ "$IMPORT_OK" = 1 ]; then
  B_CONC="$(concurrent "$B_SOCK")"
  D_CONC="$(concurrent "$D_SOCK")"
  sleep 2
  B_SHIM="$(shim_rss berth-shim "$WORK/bx")"
  D_SHIM="$(shim_rss containerd-shim-runc-v2 "$WORK/dx")"
fi
echo "$CONCURRENT concurrent run -d (wall ms): berthd $B_CONC, dockerd $D_CONC"
read -r B_SHIMS B_SHIM_KIB <<<"$B_SHIM"
read -r D_SHIMS D_SHIM_KIB <<<"$D_SHIM"
echo "shim RSS (median KiB): berth-shim $B_SHIM_KIB over $B_SHIMS shims, containerd-shim-runc-v2 $D_SHIM_KIB over $D_SHIMS shims"

mib() { python3 -c 'import sys; v=sys.argv[1]; print(v if v=="n/a" else round(float(v)/1024,2))' "$1"; }
echo
echo "| check | berthd | dockerd | berthd/dockerd | goal | met |"
echo "|---|---:|---:|---:|---|---|"
row() { # label berth docker goal_ratio goal_text absolute_goal
  local r met; r="$(ratio "$2" "$3")"
  if [ "$r" = n/a ]; then met="n/a"
  elif [ -n "$4" ]; then met=$(python3 -c "print('yes' if float('${r%x}') <= $4 else 'no')")
  else met=$(python3 -c "print('yes' if float('$2') <= $6 else 'no')"); fi
  echo "| $1 | $2 | $3 | $r | $5 | $met |"
}
row "run --rm busybox true (ms)" "$B_RUN" "$D_RUN" 0.25 "<= 0.25x" ""
row "run --rm --network none busybox true (ms)" "$B_NONE" "$D_NONE" 0.25 "<= 0.25x" ""
row "$CONCURRENT concurrent run -d (wall ms)" "$B_CONC" "$D_CONC" 0.3 "<= 0.3x" ""
row "start to first /_ping (ms)" "$B_START" "$D_START" "" "<= 50 ms" 50
row "idle daemon RSS (MiB; dockerd+containerd)" "$B_RSS" "$D_RSS" "" "<= 15 MB" 15
row "per-container shim RSS (MiB)" "$(mib "$B_SHIM_KIB")" "$(mib "$D_SHIM_KIB")" "" "<= 2 MB" 2
row "default bridge's added cost: run - run --network none (ms, median of per-round differences)" "$B_ADDED" "$D_ADDED" 0.5 "<= 0.5x" ""
TP_MET="n/a"
[ "$B_TP" != n/a ] && [ "$VETH_TP" != n/a ] && TP_MET="$(python3 -c "print('yes' if $B_TP >= 0.9 * $VETH_TP else 'no')") ($(ratio "$B_TP" "$VETH_TP") of veth)"
echo "| c2c TCP throughput (MiB/s; bare veth pair $VETH_TP) | $B_TP | $D_TP | $(ratio "$B_TP" "$D_TP") | >= 0.9x bare veth | $TP_MET |"
echo "| network connect of a running container (ms) | $B_CONN | $D_CONN | $(ratio "$B_CONN" "$D_CONN") | (measured) | n/a |"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
