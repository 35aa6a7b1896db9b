#!/usr/bin/env bash
# Sets up, builds and runs every test; the last line printed is `N passed, N failed`, where N
# counts Catch2 test cases (plus one per test that is not a Catch2 program).
#
#   scripts/test.sh                    build/ with the default options
#   scripts/test.sh --sanitize         build-sanitize/ with AddressSanitizer + UBSan
#   scripts/test.sh -Dnative=false     any other meson options: build-custom/
#   scripts/test.sh --builddir DIR ... an explicit build directory
#
# Exits non-zero when the set-up, the build or any test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
  sed -n '2,10s/^# \{0,1\}//p' "$0"
}

builddir=""
meson_args=()
sanitize=false
while (($# > 0)); do
  case "$1" in
    --sanitize) sanitize=true ;;
    --builddir)
      (($# >= 2)) || { echo "test.sh: --builddir needs a directory" >&2; exit 2; }
      builddir="$2"
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    -D*) meson_args+=("$1") ;;
    *) echo "test.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if $sanitize; then
  # b_lundef=false: clang cannot link sanitized shared objects with -Wl,--no-undefined.
  meson_args+=("-Db_sanitize=address,undefined" -Db_lundef=false)
  : "${builddir:=build-sanitize}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
fi
if [[ -z "$builddir" ]]; then
  if ((${#meson_args[@]} > 0)); then builddir=build-custom; else builddir=build; fi
fi

# A failure before the tests ran still ends with the summary line the CI reads.
fail_before_tests() {
  echo "test.sh: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

scripts/setup.sh || fail_before_tests "set-up failed"

if [[ -f "$builddir/meson-private/coredata.dat" ]]; then
  meson setup --reconfigure "$builddir" "${meson_args[@]}" ||
    fail_before_tests "meson could not reconfigure $builddir"
else
  meson setup "$builddir" "${meson_args[@]}" || fail_before_tests "meson setup failed"
fi
meson compile -C "$builddir" -j 2 || fail_before_tests "the build failed"

# meson test fails when a test fails; the summary below reports it and sets the exit code.
# A stale log from an earlier run must never be summarised as this one.
rm -f "$builddir/meson-logs/testlog.json"
meson test -C "$builddir" --print-errorlogs || true
exec python3 scripts/test_summary.py "$builddir"
