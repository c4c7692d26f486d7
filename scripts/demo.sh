#!/usr/bin/env bash
# The main job: install what is needed, build berth, start a private berthd, import a busybox
# image made from busybox-static (no registry needed), and run a container from it with
# `berth run`, printing its output. Run as root on Debian/Ubuntu. Everything it starts is
# stopped and removed at the end (containers outlive berthd, so it removes them first).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

cargo build --release --locked -p berthd -p berth-cli -p berth-shim-bin -p berth-runtime-bin
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
sock="$work/berth.sock"
berth() { "$bin/berth" -H "unix://$sock" "$@"; }
cleanup() {
  set +e
  if [ -n "${berthd_pid:-}" ]; then
    berth rm -f $(berth ps -aq) >/dev/null 2>&1
    kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
  fi
  # Overlay mounts of removed containers are gone already; detach anything left, deepest first.
  grep -o " $work[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip link delete berthdemo0 type bridge 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Its own default bridge, removed at the end (a system berthd keeps berth0).
echo '{"bridge": "berthdemo0"}' > "$work/daemon.json"
echo "+ berthd --data-root $work/data --exec-root $work/exec -H unix://$sock"
"$bin/berthd" --data-root "$work/data" --exec-root "$work/exec" -H "unix://$sock" \
  --config-file "$work/daemon.json" 2>"$work/berthd.log" &
berthd_pid=$!
for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.05; done

# A busybox image with no registry: busybox-static's applets in a rootfs tarball.
rootfs="$work/rootfs"
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
echo 'root:x:0:' > "$rootfs/etc/group"
echo "+ tar -C rootfs -c . | berth import - busybox:demo"
tar -C "$rootfs" -c . | berth import - busybox:demo
berth images

echo "+ berth run --rm busybox:demo sh -c '...'"
berth run --rm --network none busybox:demo \
  sh -c 'echo "hello from a berth container: $(hostname), pid $$, uid $(id -u)"; ls /'
