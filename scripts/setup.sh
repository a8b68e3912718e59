#!/usr/bin/env bash
# Installs everything the local backend needs on Debian/Ubuntu, then the npm packages, then builds the
# TypeScript and the native helpers (probe, BPF object, BPF loader). Run as root from the repository root.
# Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# System changes (packages, the BPF mount) need root: use sudo when run as a normal user (e.g. a CI runner);
# npm runs as the invoking user so node_modules is not owned by root.
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "setup.sh: run as root or install sudo: it installs system packages" >&2
  exit 1
fi

# chromium: only for the report's browser test (headless, driven by playwright-core).
PACKAGES=(iproute2 iptables ipset nftables clang llvm libbpf-dev libelf-dev zlib1g-dev bpftool gcc make chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The BPF filesystem holds the Cilium model's pinned maps and programs.
if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
  echo "==> mounting the BPF filesystem at /sys/fs/bpf"
  "${SUDO[@]}" mount -t bpf bpf /sys/fs/bpf
fi

echo "==> installing npm packages"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi

echo "==> building TypeScript and native helpers"
npm run build

# `bench` on PATH: a link to scripts/bench, which execs this checkout's CLI (signals reach the run itself).
# An existing /usr/local/bin/bench that is not ours is left alone.
BENCH_LINK=/usr/local/bin/bench
if [ -L "$BENCH_LINK" ] || [ ! -e "$BENCH_LINK" ]; then
  "${SUDO[@]}" ln -sfn "$PWD/scripts/bench" "$BENCH_LINK"
  echo "==> linked $BENCH_LINK -> $PWD/scripts/bench"
else
  echo "==> $BENCH_LINK exists and is not a link; not replacing it (run $PWD/scripts/bench instead)"
fi

echo "==> done. Try: bench doctor"
