#!/usr/bin/env bash
# The whole test suite: hermetic unit tests, lints, then the root-only e2e tests.
# Run as root on Debian/Ubuntu; CI runs it through .ci/run with CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: the e2e tests need root (namespaces, mounts, cgroups); run it with sudo" >&2
  exit 1
fi

# A one-shot run gains nothing from incremental compilation, and its files are a large part
# of a debug target's disk use.
# CI builds no debug info at all (panics still name file and line): disk there is tight.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=0; fi

disk_free() { echo "   (disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free)"; }

echo "== format and lints"; disk_free
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== unit tests (hermetic)"; disk_free
cargo test --workspace --exclude berth-e2e --locked

echo "== e2e tests (root)"; disk_free
# The binaries under test are release builds (what users run); the test drivers are built
# in the dev profile, which reuses the unit tests' build instead of a second, LTO-linked
# release build of every test binary.
cargo build --release --locked --workspace --bins
export BERTH_BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
cargo test --locked --no-fail-fast -p berth-e2e -- --test-threads=2
