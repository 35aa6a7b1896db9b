#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the examples need. Safe to run any
# number of times: it only calls apt-get (and its `update`) when a package is missing, and it
# is silent when everything is present.
#
# Not installed by default: python3-torch, needed only to regenerate the golden fixtures under
# tests/golden/ (the committed fixtures make the tests independent of it):
#   sudo apt-get install python3-torch
set -euo pipefail

packages=(
  meson ninja-build g++ pkg-config
  libeigen3-dev libcli11-dev catch2 libstb-dev zlib1g-dev nlohmann-json3-dev
  cmake clang-format
  dataset-fashion-mnist
)

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

fail() {
  echo "setup.sh: error: $*" >&2
  exit 1
}

command -v dpkg-query >/dev/null 2>&1 ||
  fail "dpkg-query not found: this script needs Debian or a Debian derivative." \
       "Install by hand: ${packages[*]}"

missing=()
for package in "${packages[@]}"; do
  is_installed "$package" || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0

echo "setup.sh: installing missing Debian packages: ${missing[*]}"

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  fail "not running as root and sudo is not available; as root, run:" \
       "apt-get update && apt-get install -y ${missing[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q ||
  fail "apt-get update failed (network or sources.list?); missing: ${missing[*]}"
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" ||
  fail "apt-get install failed for: ${missing[*]}"

for package in "${missing[@]}"; do
  is_installed "$package" || fail "package $package is still not installed after apt-get"
done
echo "setup.sh: all packages installed"
