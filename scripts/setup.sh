#!/usr/bin/env bash
# Installs what berth needs to build and test on a fresh Debian/Ubuntu machine (as root).
# Safe to run again: it only installs what is missing.
set -euo pipefail

APT_PACKAGES=(busybox-static libseccomp-dev pkg-config runc hyperfine iproute2 nftables gcc make python3 curl ca-certificates openssl docker-registry skopeo docker.io git docker-compose)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# docker-py for the compatibility tests: Debian's python3-docker unless python3 already has it.
if ! python3 -c 'import docker' >/dev/null 2>&1; then
  echo "setup: installing docker-py"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$(command -v python3)" = /usr/bin/python3 ]; then
    apt-get install -y -qq --no-install-recommends python3-docker >/dev/null
  else
    python3 -m pip install -q docker
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
    rustup component add clippy rustfmt
  fi
fi
