#!/usr/bin/env bash
# Disassembles the integer shift kernels (the loops of shiftops/kernel/loops.inc, compiled once
# per instruction-set path) and fails if any multiply instruction appears in them: integer or
# float multiplies, multiply-adds, dot products, carry-less multiplies.
# Usage: tools/check_no_multiply.sh [build-dir]   (default: build)
set -euo pipefail
build=${1:-build}
if ! command -v objdump >/dev/null; then
  echo "check_no_multiply: objdump (binutils) is not installed: skipped" >&2
  exit 77  # meson's code for a skipped test
fi
paths=(portable)
[[ $(uname -m) == x86_64 ]] && paths+=(avx2 avx512)
multiply='^(v?p?mul|imul|mulx|v?fn?m(add|sub)|vfmaddsub|vfmsubadd|v?pmadd|vpdp|v?pclmul|v?dpp)'
status=0
for path in "${paths[@]}"; do
  object=$(find "$build" -name "shiftops_kernel_${path}.cpp.o" -path '*libdeepshift*' | head -n 1)
  if [[ -z $object ]]; then
    echo "check_no_multiply: no object for the $path kernels under $build (build the library first)" >&2
    exit 2
  fi
  # Every function of the path's namespace: the task loops and whatever was not inlined.
  listing=$(objdump -d --no-show-raw-insn -C "$object" |
    awk -v ns="ds::shift::kernel::${path}::" '
      /^[0-9a-f]+ <.*>:$/ { inside = index($0, ns) > 0; name = $0; next }
      inside && /^ +[0-9a-f]+:\t/ { split($0, f, "\t"); split(f[2], m, " "); print name "\t" m[1] }')
  functions=$(cut -f1 <<<"$listing" | sort -u | wc -l)
  instructions=$(wc -l <<<"$listing")
  if (( functions == 0 )); then
    echo "check_no_multiply: no functions of ds::shift::kernel::$path in $object" >&2
    exit 2
  fi
  offenders=$(awk -F'\t' -v re="$multiply" '$2 ~ re' <<<"$listing" || true)
  if [[ -n $offenders ]]; then
    echo "FAIL $path: multiply instructions in the shift kernels:"
    sort <<<"$offenders" | uniq -c
    status=1
  else
    vector=$(grep -cE 'vpsllv|vpsll|psll' <<<"$listing" || true)
    echo "ok   $path: $functions functions, $instructions instructions, $vector vector shifts, no multiply"
  fi
done
exit $status
