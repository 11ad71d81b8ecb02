#!/usr/bin/env bash
# Installs the Debian 12 packages keel needs to build, test and benchmark; installs only what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsodium-dev libssl-dev openssl ca-certificates libsqlite3-dev sqlite3 libpq-dev libhnswlib-dev
  libspdlog-dev libfmt-dev libcli11-dev libtoml11-dev libicu-dev
  libgtest-dev googletest
  python3 python3-pytest python3-requests python3-jwt python3-cryptography
  postgresql curl iproute2
  chromium chromium-driver python3-selenium  # the admin console's browser tests (tests/e2e/test_console_browser.py)
)
for flag in "$@"; do
  case $flag in
    --bench) packages+=(wrk nginx haproxy nghttp2-client util-linux procps python3-numpy) ;;
    --fuzz) packages+=(clang-15 libfuzzer-15-dev) ;;  # scripts/fuzz.sh
    --coverage) packages+=(clang-15 llvm-15) ;;  # scripts/error-coverage.sh: llvm-profdata-15, llvm-cov-15
    *) echo "setup: unknown flag $flag (--bench, --fuzz, --coverage)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The console's front-end packages come from npm: the machine's Node.js and npm, else Debian's.
command -v npm >/dev/null || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The admin console's front-end dependencies, exactly as its lockfile records them; cmake/embed_console.cmake
# builds them into the binary. Installed again only when the lockfile changes.
console=src/keel/gateway/console
cd "$(dirname "$0")/.."
if ! cmp -s "$console/package-lock.json" "$console/node_modules/.keel-installed-lock"; then
  echo "setup: installing the console's npm packages ($console/package-lock.json)" >&2
  npm ci --prefix "$console" --no-audit --no-fund --loglevel=error >/dev/null
  cp "$console/package-lock.json" "$console/node_modules/.keel-installed-lock"
fi
