#!/usr/bin/env bash
# usage: run_consumer.sh BUILD_ROOT PROJECT_DIR [B_SANITIZE]
# Installs deepshift from BUILD_ROOT into a temporary staging directory, then builds the
# consumer project in PROJECT_DIR against it through pkg-config, with Meson and (when cmake is
# present) with CMake, runs both programs and checks that they report "consumer ok".
set -euo pipefail

build_root=$1
project=$2
sanitize=${3:-none}

work=$(mktemp -d "${TMPDIR:-/tmp}/deepshift-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage

fail() {
  echo "consumer: FAIL: $*" >&2
  exit 1
}

echo "== installing $build_root into $stage"
meson install -C "$build_root" --destdir "$stage" --quiet || fail "meson install failed"

# The installed .pc names the configured prefix; point it at the staging copy instead. This
# also checks that every path in the .pc is relative to ${prefix}.
pc=$(find "$stage" -name deepshift.pc -print -quit)
[[ -n "$pc" ]] || fail "deepshift.pc was not installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
sed -i "s|^prefix=.*|prefix=$stage$prefix|" "$pc"
PKG_CONFIG_PATH=$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
echo "== pkg-config deepshift: $(pkg-config --cflags --libs deepshift)"
[[ -f "$(pkg-config --variable=includedir deepshift)/deepshift/deepshift.hpp" ]] ||
  fail "the umbrella header is not at include/deepshift/deepshift.hpp"
LD_LIBRARY_PATH=$(pkg-config --variable=libdir deepshift)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# Runs a consumer program and checks its verdict line.
check_program() {
  local program=$1 output
  output=$("$program") || fail "$program exited with status $?: $output"
  echo "$output"
  grep -qx "consumer ok" <<<"$output" || fail "$program did not print 'consumer ok'"
}

echo "== building the consumer with Meson"
meson_args=()
# A sanitized library needs the sanitizer runtime in the program that links it.
[[ "$sanitize" == none ]] || meson_args+=("-Db_sanitize=$sanitize" -Db_lundef=false)
meson setup "$work/meson-build" "$project" "${meson_args[@]}" >"$work/meson-setup.log" 2>&1 ||
  { cat "$work/meson-setup.log"; fail "meson setup of the consumer failed"; }
meson compile -C "$work/meson-build" || fail "the Meson consumer did not build"
check_program "$work/meson-build/consumer"

if command -v cmake >/dev/null 2>&1; then
  echo "== building the consumer with CMake"
  cmake_flags=""
  [[ "$sanitize" == none ]] || cmake_flags="-fsanitize=$sanitize"
  cmake -S "$project" -B "$work/cmake-build" -DCMAKE_CXX_FLAGS="$cmake_flags" \
    >"$work/cmake-setup.log" 2>&1 ||
    { cat "$work/cmake-setup.log"; fail "cmake configure of the consumer failed"; }
  cmake --build "$work/cmake-build" || fail "the CMake consumer did not build"
  check_program "$work/cmake-build/consumer"
else
  echo "== cmake not found: skipping the CMake consumer"
fi
echo "consumer: PASS"
