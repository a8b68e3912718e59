#!/usr/bin/env bash
# Installs what cni-bench needs, then the npm packages, then builds. Run from the repository root, as root or as a
# user with sudo. Idempotent: safe to run again.
#
#   bash scripts/setup.sh               # local backend: kernel tools, compilers, native helpers (and a browser for the report test)
#   bash scripts/setup.sh --kind-only   # kind/cluster backends only: npm packages and the TypeScript build; no
#                                       # compilers, no BPF toolchain, no browser (kind, kubectl, helm and Docker are
#                                       # checked, not installed: the nightly installs the pinned ones)
#   bash scripts/setup.sh --no-browser  # local backend without the report's browser test
#   SETUP_DRY_RUN=1 bash scripts/setup.sh   # print what would be installed, change nothing
#
# Packages are named per distribution (Debian/Ubuntu: apt, Fedora/RHEL: dnf); a tool already on PATH is not
# installed again. Chromium is only installed where the distribution ships it as a package: on Ubuntu `apt
# install chromium` is a snap shim (and GitHub's runners already have a browser), so there it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_ONLY=0
BROWSER=1
for arg in "$@"; do
  case "$arg" in
    --kind-only) KIND_ONLY=1; BROWSER=0 ;;
    --no-browser) BROWSER=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

# System changes (packages, the BPF mount) need root: use sudo when run as a normal user (e.g. a CI runner);
# npm runs as the invoking user so node_modules is not owned by root.
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=(__no_sudo__)
fi

DISTRO=unknown
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  case " ${ID:-} ${ID_LIKE:-} " in
    *" ubuntu "*) DISTRO=ubuntu ;;
    *" debian "*) DISTRO=debian ;;
    *" fedora "*|*" rhel "*|*" centos "*) DISTRO=fedora ;;
  esac
  [ "${ID:-}" = ubuntu ] && DISTRO=ubuntu
fi

# command|debian package|fedora package — a tool on PATH counts as present whatever installed it.
TOOLS=(
  "ip|iproute2|iproute"
  "tc|iproute2|iproute-tc"
  "iptables|iptables|iptables-legacy"
  "ipset|ipset|ipset"
  "nft|nftables|nftables"
  "clang|clang|clang"
  "llc|llvm|llvm"
  "bpftool|bpftool|bpftool"
  "gcc|gcc|gcc"
  "make|make|make"
)
# Headers have no command: checked with the package manager.
# libc6-dev / glibc-static: the static C library for cb-probe-static, the probe kind/cluster runs copy into the client pod.
HEADERS_DEB=(libbpf-dev libelf-dev zlib1g-dev libc6-dev)
HEADERS_RPM=(libbpf-devel elfutils-libelf-devel zlib-devel glibc-static)

missing=()
if [ "$KIND_ONLY" -eq 0 ]; then
  col=2
  [ "$DISTRO" = fedora ] && col=3
  for t in "${TOOLS[@]}"; do
    cmd=${t%%|*}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$(echo "$t" | cut -d'|' -f"$col")")
  done
  case "$DISTRO" in
    debian|ubuntu) for p in "${HEADERS_DEB[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done ;;
    fedora) for p in "${HEADERS_RPM[@]}"; do rpm -q "$p" >/dev/null 2>&1 || missing+=("$p"); done ;;
  esac
  if [ "$BROWSER" -eq 1 ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
    case "$DISTRO" in
      debian|fedora) missing+=(chromium) ;;
      ubuntu) echo "==> skipping chromium: on Ubuntu it is a snap, not an apt package; install a browser yourself for the report's browser test (or use --no-browser)" ;;
    esac
  fi
else
  # kind/cluster runs measure connect with the statically linked probe in the client pod: gcc and a static libc.
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  case "$DISTRO" in
    debian|ubuntu) dpkg-query -W -f='${Status}' libc6-dev 2>/dev/null | grep -q "install ok installed" || missing+=(libc6-dev) ;;
    fedora) rpm -q glibc-static >/dev/null 2>&1 || missing+=(glibc-static) ;;
  esac
fi

# Deduplicated, order kept.
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
fi

# SETUP_DRY_RUN=1: say what would be installed and stop (used to check this script on a machine without changing it).
if [ "${SETUP_DRY_RUN:-0}" = 1 ]; then
  echo "distro=$DISTRO kind_only=$KIND_ONLY missing=${missing[*]:-}"
  exit 0
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "${SUDO[0]:-}" = __no_sudo__ ]; then
    echo "setup.sh: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  echo "==> installing system packages ($DISTRO): ${missing[*]}"
  case "$DISTRO" in
    debian|ubuntu)
      # A mirror that drops a connection is retried rather than failing the whole setup (CI must not fail by chance).
      "${SUDO[@]}" apt-get -o Acquire::Retries=5 update -qq
      "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=5 install -y -qq "${missing[@]}" >/dev/null ;;
    fedora)
      "${SUDO[@]}" dnf install -y -q "${missing[@]}" ;;
    *)
      echo "setup.sh: unknown distribution; install these yourself: ${missing[*]}" >&2
      exit 1 ;;
  esac
fi

if [ "$KIND_ONLY" -eq 0 ]; then
  # The BPF filesystem holds the Cilium model's pinned maps and programs.
  if ! grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
    echo "==> mounting the BPF filesystem at /sys/fs/bpf"
    "${SUDO[@]}" mount -t bpf bpf /sys/fs/bpf
  fi
else
  for cmd in docker kind kubectl helm; do
    command -v "$cmd" >/dev/null 2>&1 || echo "==> note: $cmd is not on PATH; the kind backend needs it (bench doctor says how to get it)"
  done
fi

echo "==> installing npm packages"
# The registry retried on a dropped connection (npm's default is 2 retries from 10 s).
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --fetch-retries=5; else npm install --no-audit --no-fund --fetch-retries=5; fi

if [ "$KIND_ONLY" -eq 1 ]; then
  echo "==> building TypeScript and the static probe (kind/cluster backends need no other native helper)"
  npx tsc -p tsconfig.json
  node scripts/build-native.mjs --only cb-probe-static
else
  echo "==> building TypeScript and native helpers"
  npm run build
fi

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
