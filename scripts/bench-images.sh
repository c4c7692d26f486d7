#!/usr/bin/env bash
# Benchmarks berth's image path against Debian's dockerd 20.10 side by side in one run
# (issue 3, "Checks"), both private instances driven by the same docker CLI 28, against the
# same local registries on 127.0.0.1 (Debian's docker-registry, distribution 2.8):
#   1. push of a ~100 MB image (busybox + 4 layers of compressible text): berthd vs dockerd,
#      each round to a fresh docker-registry and from a freshly loaded image, so neither
#      daemon can reuse a compressed blob or a mount (rounds alternate which daemon goes first);
#      then again with berthd restarted with daemon.json `"push-compression": "zstd"` (OCI
#      zstd layers) against dockerd's gzip push: two rows, "push (gzip)" and "push (zstd)"
#   2. pull of the same image from one docker-registry, rmi before every round, alternating
#   3. unpack throughput (MB/s of layer tar) of a rootfs-like layer (host /usr/lib and
#      /usr/share files): `docker load` of the same archive into each daemon, rmi between
#   4. berth-registry vs docker-registry serving the same blob (skopeo copy with digests kept):
#      throughput of parallel curl GETs and each server's RSS (current and peak)
# and prints each berth/docker ratio next to the goal of issue 3 (pull <= 0.5x, push <= 0.3x,
# registry throughput >= 1.0x with lower memory). Run on a quiet machine if you can: the
# ratios hold only for the same run, and the load is printed with them.
#
# Usage (as root): scripts/bench-images.sh [ROUNDS]     (default ROUNDS=3 per daemon and case)
#   BERTH_BIN_DIR=dir with berthd and berth-registry (default: the release build)
#   BENCH_LAYER_MB=N (default 25, size of each of the 4 data layers, uncompressed)
#   BENCH_GETS=N (default 16 GETs per registry round), BENCH_PARALLEL=N (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${1:-3}"
LAYER_MB="${BENCH_LAYER_MB:-25}"
GETS="${BENCH_GETS:-16}"
PARALLEL="${BENCH_PARALLEL:-4}"
DOCKER=/usr/local/bin/docker
DOCKERD=/usr/sbin/dockerd
REGISTRY=/usr/bin/docker-registry

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-images.sh: run as root (daemons, mounts)" >&2
  exit 1
fi
for tool in python3 tar curl skopeo "$DOCKER" "$DOCKERD" "$REGISTRY" /bin/busybox; do
  command -v "$tool" >/dev/null || { echo "bench-images.sh: $tool is missing" >&2; exit 1; }
done
BERTH_BIN_DIR="${BERTH_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/release}"
for bin in berthd berth-registry; do
  [ -x "$BERTH_BIN_DIR/$bin" ] && continue
  echo "bench: building the release binaries"
  cargo build --release -p berthd -p berth-registry-bin
  break
done

WORK="$(mktemp -d /tmp/bm-XXXXXX)"
CGROUP_PARENT="berth-bench-$(basename "$WORK")"
B_SOCK="$WORK/b.sock"
D_SOCK="$WORK/d.sock"
mkdir -p "$WORK/cli"
export DOCKER_CONFIG="$WORK/cli" DOCKER_CLI_HINTS=false
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_API_VERSION
PIDS=()

stop_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid"
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}

cleanup() {
  set +e
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  # containerd started by our dockerd names our private root in its command line.
  for pid in $(grep -l -s -F "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
    [ "$pid" != "$$" ] && kill -9 "$pid" 2>/dev/null
  done
  sleep 0.5
  find /sys/fs/cgroup -maxdepth 5 -type d -name "$CGROUP_PARENT" 2>/dev/null |
    while read -r d; do rmdir "$d" 2>/dev/null; done
  grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}
wait_socket() {
  for _ in $(seq 1200); do
    curl -sf --unix-socket "$1" http://d/_ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "no daemon answers on $1" >&2; return 1
}

# start_docker_registry DIR: prints "PID PORT".
start_docker_registry() {
  local dir="$1" port
  port="$(free_port)"
  mkdir -p "$dir"
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$dir/data" "$port" >"$dir/config.yml"
  setsid "$REGISTRY" serve "$dir/config.yml" </dev/null >"$dir/log" 2>&1 &
  echo "$! $port"
}
start_berth_registry() {
  local dir="$1" port
  port="$(free_port)"
  mkdir -p "$dir"
  setsid "$BERTH_BIN_DIR/berth-registry" serve --listen "127.0.0.1:$port" --root "$dir/data" \
    </dev/null >"$dir/log" 2>&1 &
  echo "$! $port"
}

# start_berthd [PUSH_COMPRESSION]: (re)starts berthd on the same data root.
start_berthd() {
  printf '{"cgroup-parent": "%s"%s}\n' "$CGROUP_PARENT" "${1:+, \"push-compression\": \"$1\"}" \
    >"$WORK/berthd.json"
  setsid "$BERTH_BIN_DIR/berthd" -H "unix://$B_SOCK" --data-root "$WORK/bd" \
    --exec-root "$WORK/bx" --pidfile "$WORK/berthd.pid" --config-file "$WORK/berthd.json" \
    </dev/null >"$WORK/berthd.log" 2>&1 &
  B_PID=$!; PIDS+=("$B_PID")
}
start_daemons() {
  start_berthd
  echo '{}' >"$WORK/dockerd.json"
  setsid "$DOCKERD" -H "unix://$D_SOCK" --data-root "$WORK/dd" --exec-root "$WORK/dx" \
    --pidfile "$WORK/dockerd.pid" --config-file "$WORK/dockerd.json" --iptables=false \
    --ip-masq=false --bridge=none --cgroup-parent "$CGROUP_PARENT" \
    </dev/null >"$WORK/dockerd.log" 2>&1 &
  D_PID=$!; PIDS+=("$D_PID")
  wait_socket "$B_SOCK" || { tail -20 "$WORK/berthd.log"; exit 1; }
  wait_socket "$D_SOCK" || { tail -20 "$WORK/dockerd.log"; exit 1; }
}

b() { "$DOCKER" -H "unix://$B_SOCK" "$@"; }
d() { "$DOCKER" -H "unix://$D_SOCK" "$@"; }
sock_of() { if [ "$1" = berthd ]; then echo "$B_SOCK"; else echo "$D_SOCK"; fi; }
dk() { local who="$1"; shift; "$DOCKER" -H "unix://$(sock_of "$who")" "$@"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
median() { python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.2f}" if v else "n/a")' "$@"; }
ratio() { python3 -c 'import sys; a,b=sys.argv[1],sys.argv[2]; print("n/a" if "n/a" in (a,b) or float(b)==0 else f"{float(a)/float(b):.2f}x")' "$1" "$2"; }
rss_kib() { awk "/^$2/ {print \$2}" "/proc/$1/status" 2>/dev/null || echo 0; }
machine() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c rustc || true) rustc processes"; }
# order ROUND: the two daemons, the first one alternating by round.
order() { if [ $(($1 % 2)) -eq 1 ]; then echo "berthd dockerd"; else echo "dockerd berthd"; fi; }
remove_image() { dk "$1" rmi -f "$2" >/dev/null 2>&1 || true; dk "$1" image prune -af >/dev/null 2>&1 || true; }

echo "== bench-images: $(date -u +'%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(machine)"
echo "   berthd, berth-registry from $BERTH_BIN_DIR ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), dockerd $("$DOCKERD" --version | cut -d' ' -f3 | tr -d ,), $ROUNDS rounds"
start_daemons

# The ~100 MB image: busybox, then 4 COPY layers of text (random words from a 4096-word
# vocabulary: gzip gets about 2.5:1, like real text-heavy layers), built by dockerd's classic
# builder (no container runs) and saved, so both daemons load the same archive.
CTX="$WORK/ctx"
mkdir -p "$CTX/rootfs/bin" "$CTX/rootfs/etc"
cp /bin/busybox "$CTX/rootfs/bin/busybox"
for applet in sh ls cat echo true; do ln -sf busybox "$CTX/rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$CTX/rootfs/etc/passwd"
tar -C "$CTX/rootfs" -cf "$WORK/busybox.tar" .
d import "$WORK/busybox.tar" bench-base:1 >/dev/null
python3 - "$CTX" "$LAYER_MB" <<'EOF'
import os, random, sys
ctx, mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(3)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10)))
         for _ in range(4096)]
for layer in range(4):
    os.makedirs(f"{ctx}/data{layer}", exist_ok=True)
    for part in range(mb // 5):
        with open(f"{ctx}/data{layer}/part{part}.txt", "w") as f:
            size = 0
            while size < 5 << 20:
                line = " ".join(rng.choices(words, k=12)) + "\n"
                f.write(line)
                size += len(line)
EOF
printf 'FROM bench-base:1\nCOPY data0 /data0\nCOPY data1 /data1\nCOPY data2 /data2\nCOPY data3 /data3\n' >"$CTX/Dockerfile"
rm -rf "$CTX/rootfs"
DOCKER_BUILDKIT=0 d build -q -t bench-big:1 "$CTX" >/dev/null 2>"$WORK/build.err" ||
  { cat "$WORK/build.err"; exit 1; }
d save -o "$WORK/big.tar" bench-big:1
d rmi bench-big:1 bench-base:1 >/dev/null
d image prune -af >/dev/null
IMAGE_MB="$(python3 -c "import os,sys; print(round(os.path.getsize(sys.argv[1])/1e6))" "$WORK/big.tar")"
echo "image: busybox + 4 x ${LAYER_MB} MB text layers, docker save archive $IMAGE_MB MB"

# 1. push: each round from a freshly loaded image to a fresh docker-registry; berthd gzips
#    (the default) in push_rounds gzip, then, restarted with push-compression zstd, sends
#    zstd layers in push_rounds zstd; dockerd gzips in both.
declare -A PUSH
push_rounds() { # LABEL: appends to PUSH[berthd-LABEL] and PUSH[dockerd-LABEL]
  local label="$1" round who rpid rport start out
  for round in $(seq "$ROUNDS"); do
  for who in $(order "$round"); do
    read -r rpid rport < <(start_docker_registry "$WORK/push-$who-$round")
    PIDS+=("$rpid"); wait_port "$rport"
    dk "$who" load -q -i "$WORK/big.tar" >/dev/null
    dk "$who" tag bench-big:1 "127.0.0.1:$rport/big:1"
    start="$(now)"
    if ! out="$(dk "$who" push "127.0.0.1:$rport/big:1" 2>&1)"; then
      echo "push by $who fails: $out" >&2; exit 1
    fi
    PUSH[$who-$label]+=" $(elapsed "$start" "$(now)")"
    grep -q ': Pushed' <<<"$out" || { echo "push by $who pushed nothing: $out" >&2; exit 1; }
    # What went over the wire: the layers' media types (compressed or not) and total size.
    [ "$round" -eq 1 ] && echo "  $who ($label round) pushed: $(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://127.0.0.1:$rport/v2/big/manifests/1" |
      python3 -c 'import json,sys; l=json.load(sys.stdin)["layers"]; print(sorted({x["mediaType"] for x in l}), round(sum(x["size"] for x in l)/1e6,1), "MB of layers")')"
    remove_image "$who" "127.0.0.1:$rport/big:1"; remove_image "$who" bench-big:1
    stop_pid "$rpid"; rm -rf "$WORK/push-$who-$round"
  done
  done
  echo "push, berthd $label (s): berthd${PUSH[berthd-$label]}; dockerd${PUSH[dockerd-$label]}   ($(machine))"
}
push_rounds gzip
stop_pid "$B_PID"
start_berthd zstd
wait_socket "$B_SOCK" || { tail -20 "$WORK/berthd.log"; exit 1; }
push_rounds zstd

# 2. pull: one registry holding the image (pushed once by dockerd), rmi before each round.
read -r REG_PID REG_PORT < <(start_docker_registry "$WORK/reg")
PIDS+=("$REG_PID"); wait_port "$REG_PORT"
BIG="127.0.0.1:$REG_PORT/big:1"
d load -q -i "$WORK/big.tar" >/dev/null
d tag bench-big:1 "$BIG"
d push "$BIG" >/dev/null
remove_image dockerd "$BIG"; remove_image dockerd bench-big:1
declare -A PULL
for round in $(seq "$ROUNDS"); do
  for who in $(order "$round"); do
    remove_image "$who" "$BIG"
    start="$(now)"
    if ! out="$(dk "$who" pull "$BIG" 2>&1)"; then
      echo "pull by $who fails: $out" >&2; exit 1
    fi
    PULL[$who]+=" $(elapsed "$start" "$(now)")"
    [ "$(grep -c ': Pull complete' <<<"$out")" -ge 5 ] ||
      { echo "pull by $who downloaded fewer than 5 layers: $out" >&2; exit 1; }
  done
done
if [ "$(b image inspect -f '{{.Id}}' "$BIG")" != "$(d image inspect -f '{{.Id}}' "$BIG")" ]; then
  echo "warning: the pulled image ids differ" >&2
fi
echo "pull (s): berthd${PULL[berthd]}; dockerd${PULL[dockerd]}   ($(machine))"
remove_image berthd "$BIG"; remove_image dockerd "$BIG"

# 3. unpack: docker load of a rootfs-like layer (many small files and shared libraries).
tar -C / -cf "$WORK/rootfs.tar" --exclude='*/__pycache__' \
  usr/lib/x86_64-linux-gnu/perl-base usr/lib/python3 usr/lib/python3.11 usr/share/perl \
  usr/share/zoneinfo etc bin/bash 2>/dev/null || true
d import "$WORK/rootfs.tar" bench-rootfs:1 >/dev/null
d save -o "$WORK/rootfs-save.tar" bench-rootfs:1
remove_image dockerd bench-rootfs:1
LAYER_BYTES="$(stat -c %s "$WORK/rootfs.tar")"
FILES="$(tar -tf "$WORK/rootfs.tar" | wc -l)"
echo "rootfs layer: $((LAYER_BYTES / 1000000)) MB, $FILES entries"
declare -A LOAD
for round in $(seq "$ROUNDS"); do
  for who in $(order "$round"); do
    sync
    start="$(now)"
    dk "$who" load -q -i "$WORK/rootfs-save.tar" >/dev/null
    LOAD[$who]+=" $(elapsed "$start" "$(now)")"
    remove_image "$who" bench-rootfs:1
  done
done
echo "load of the rootfs archive (s): berthd${LOAD[berthd]}; dockerd${LOAD[dockerd]}   ($(machine))"

# 4. serving one blob: the largest layer of the image, copied with digests kept.
read -r BR_PID BR_PORT < <(start_berth_registry "$WORK/breg")
PIDS+=("$BR_PID"); wait_port "$BR_PORT"
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --preserve-digests \
  "docker://$BIG" "docker://127.0.0.1:$BR_PORT/big:1"
BLOB="$(curl -sf -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
  "http://127.0.0.1:$REG_PORT/v2/big/manifests/1" |
  python3 -c 'import json,sys; l=max(json.load(sys.stdin)["layers"], key=lambda l: l["size"]); print(l["digest"], l["size"])')"
read -r DIGEST BLOB_SIZE <<<"$BLOB"
echo "blob: $DIGEST, $((BLOB_SIZE / 1000000)) MB; $GETS GETs per round, $PARALLEL in parallel"
serve_round() { # PORT: prints the seconds for $GETS GETs
  local start
  start="$(now)"
  seq "$GETS" | xargs -P "$PARALLEL" -I{} curl -sf -o /dev/null "http://127.0.0.1:$1/v2/big/blobs/$DIGEST"
  elapsed "$start" "$(now)"
}
declare -A SERVE
for round in $(seq "$ROUNDS"); do
  for who in $(order "$round"); do
    if [ "$who" = berthd ]; then SERVE[berth]+=" $(serve_round "$BR_PORT")"
    else SERVE[docker]+=" $(serve_round "$REG_PORT")"; fi
  done
done
B_RSS="$(( $(rss_kib "$BR_PID" VmRSS) / 1024 ))"; B_HWM="$(( $(rss_kib "$BR_PID" VmHWM) / 1024 ))"
D_RSS="$(( $(rss_kib "$REG_PID" VmRSS) / 1024 ))"; D_HWM="$(( $(rss_kib "$REG_PID" VmHWM) / 1024 ))"
echo "serve (s per $GETS GETs): berth-registry${SERVE[berth]}; docker-registry${SERVE[docker]}   ($(machine))"

# Summary.
PB="$(median ${PUSH[berthd-gzip]})"; PD="$(median ${PUSH[dockerd-gzip]})"
PZ="$(median ${PUSH[berthd-zstd]})"; PZD="$(median ${PUSH[dockerd-zstd]})"
LB="$(median ${PULL[berthd]})"; LD="$(median ${PULL[dockerd]})"
UB="$(median ${LOAD[berthd]})"; UD="$(median ${LOAD[dockerd]})"
SB="$(median ${SERVE[berth]})"; SD="$(median ${SERVE[docker]})"
mbps() { python3 -c "import sys; print(f'{float(sys.argv[1])/1e6/float(sys.argv[2]):.1f}')" "$1" "$2"; }
UBM="$(mbps "$LAYER_BYTES" "$UB")"; UDM="$(mbps "$LAYER_BYTES" "$UD")"
SBM="$(mbps "$((BLOB_SIZE * GETS))" "$SB")"; SDM="$(mbps "$((BLOB_SIZE * GETS))" "$SD")"
echo
echo "| case | berth | docker | berth/docker | goal |"
echo "|---|---:|---:|---:|---|"
echo "| push (gzip, default) ${IMAGE_MB} MB image (s, median) | $PB | $PD | $(ratio "$PB" "$PD") | <= 0.3x |"
echo "| push (berthd zstd vs dockerd gzip) ${IMAGE_MB} MB image (s, median) | $PZ | $PZD | $(ratio "$PZ" "$PZD") | <= 0.3x |"
echo "| pull ${IMAGE_MB} MB image (s, median) | $LB | $LD | $(ratio "$LB" "$LD") | <= 0.5x |"
echo "| load of a $((LAYER_BYTES / 1000000)) MB rootfs layer (MB/s, median) | $UBM | $UDM | $(ratio "$UBM" "$UDM") | (higher is better) |"
echo "| registry serving one blob (MB/s, median) | $SBM | $SDM | $(ratio "$SBM" "$SDM") | >= 1.0x |"
echo "| registry RSS after serving / peak (MiB) | $B_RSS / $B_HWM | $D_RSS / $D_HWM | $(ratio "$B_HWM" "$D_HWM") (peak) | lower |"
echo
echo "end: $(date -u +'%H:%M UTC'), $(machine)"
