#!/usr/bin/env bash
# The main job: install, build, and run a busybox container with berth-runtime,
# printing its output. Run as root on Debian/Ubuntu.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
source scripts/bundle.sh

cargo build --release --locked -p berth-runtime-bin
export BERTH_RUNTIME="${CARGO_TARGET_DIR:-$PWD/target}/release/berth-runtime"

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
make_busybox_bundle "$work/bundle" sh -c 'echo "hello from a berth container: $(hostname), pid $$, uid $(id -u)"; ls /'
id="berth-demo-$$"
echo "+ berth-runtime run --bundle $work/bundle $id"
set +e
"$BERTH_RUNTIME" --root "$work/state" run --bundle "$work/bundle" "$id"
status=$?
set -e
echo "container exited with status $status"
exit "$status"
