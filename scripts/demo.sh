#!/usr/bin/env bash
# Sets up, builds and runs the main demo: an MLP fitted with autograd (examples/fit_mlp.cpp).
# Arguments are passed to the demo, e.g. `scripts/demo.sh --steps 2000 --lr 0.05`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
[[ -f build/meson-private/coredata.dat ]] || meson setup build
meson compile -C build -j 2 fit_mlp
exec build/examples/fit_mlp "$@"
