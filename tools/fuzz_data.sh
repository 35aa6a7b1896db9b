#!/usr/bin/env bash
# Builds the libFuzzer targets of the data readers with clang (AddressSanitizer + UBSan) and
# runs each for a bounded time, starting from the seeds in tests/data/fuzz/seeds/.
#
#   tools/fuzz_data.sh [SECONDS]    seconds per target (default 60)
#
# Targets: fuzz_idx (IDX + gzip), fuzz_cifar (CIFAR-10/100 records), fuzz_image (stb_image:
# JPEG, PNG, BMP). Objects, binaries, the growing corpora and any crash inputs go to
# build-fuzz/; a crash input reproduces with `build-fuzz/fuzz_<target> <file>`.
# Exits non-zero when a target crashes, leaks or trips a sanitizer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
out=build-fuzz
mkdir -p "$out/obj"
cxx="${CXX:-clang++}"
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I. -isystem /usr/include/eigen3
       -DEIGEN_NO_DEBUG -fopenmp=libgomp -fsanitize=address,undefined
       -fno-sanitize-recover=undefined)

# The parsers need the tensor library (and autograd, which tensor.cpp links to); only these are
# compiled, instrumented, and each object is rebuilt when its source is newer.
sources=(data/*.cpp tensor/*.cpp tensor/cpu/*.cpp tensor/ops/*.cpp autograd/*.cpp)
objects=()
stale=()
for source in "${sources[@]}"; do
  object="$out/obj/$(echo "$source" | tr / _).o"
  objects+=("$object")
  if [[ ! "$object" -nt "$source" ]]; then stale+=("$source" "$object"); fi
done
printf '%s\n' "${stale[@]}" | xargs -r -n 2 -P "$(nproc)" sh -c \
  'echo "compiling $0"; '"$cxx"' '"${flags[*]}"' -fsanitize=fuzzer-no-link -c "$0" -o "$1"'

status=0
for target in idx cifar image; do
  binary="$out/fuzz_$target"
  "$cxx" "${flags[@]}" -fsanitize=fuzzer "tests/data/fuzz/fuzz_$target.cpp" "${objects[@]}" \
    -lz -o "$binary"
  corpus="$out/corpus/$target"
  mkdir -p "$corpus" "$out/crashes/$target"
  echo "== fuzz_$target for ${seconds}s"
  # -rss_limit_mb: the readers refuse inputs that would need more; a bigger allocation is a bug.
  if ! "$binary" "$corpus" "tests/data/fuzz/seeds/$target" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$out/crashes/$target/" 2>&1 | tail -n 25; then
    status=1
  fi
done
find "$out/crashes" -type f | grep -q . && { echo "crash inputs in $out/crashes/"; status=1; }
exit $status
