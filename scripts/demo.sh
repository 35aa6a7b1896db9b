#!/usr/bin/env bash
# The README demo: installs what is missing, builds the mnist trainer, trains the simple conv
# model as DeepShift-PS (every layer, radam) on the full Fashion-MNIST from Debian's
# dataset-fashion-mnist, then evaluates the saved model with the CPU integer shift kernel and
# prints the float-path accuracy, the shift-kernel accuracy, the model size FP32 against packed
# shift weights, and where the outputs are.
# Arguments go to the training run, e.g. `scripts/demo.sh --epochs 5` (default 2 epochs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
[[ -f build/meson-private/coredata.dat ]] || meson setup build
meson compile -C build -j 2 mnist

data=/usr/share/datasets/fashion-mnist
folder=models/mnist/simple_conv/shift_ps_all_wb_5_demo
model=(--type conv --shift-depth 1000 --shift-type PS --data-dir "$data" --desc demo)
started=$SECONDS

echo "== Training DeepShift-PS (conv model, radam) on Fashion-MNIST"
build/examples/mnist "${model[@]}" --optimizer radam --lr 0.01 --epochs 2 --log-interval 100 \
  --print-weights false --overwrite true "$@"

echo
echo "== Evaluating the saved model with the integer shift kernel"
evaluation=$(build/examples/mnist "${model[@]}" -e --model "$folder/weights.safetensors" \
  --use-kernel true --log-interval 100)
echo "$evaluation"

# The last row of train_log.csv: epoch,train_loss,test_loss,top1,top5,seconds.
float_top1=$(tail -n 1 "$folder/train_log.csv" | cut -d, -f4)
kernel_line=$(grep '^Test set (shift kernel):' <<<"$evaluation")
size_line=$(grep '^Model size:' <<<"$evaluation")

echo
echo "== Demo summary ($((SECONDS - started)) s)"
printf 'float-path accuracy (rounded DeepShift-PS weights): %.2f%%\n' "$float_top1"
echo "shift-kernel accuracy: ${kernel_line#*top-1 }"
echo "${size_line%: *}"
echo "outputs: $folder/ (train_log.csv, learning_curve.svg, model_summary.txt, checkpoint,"
echo "         weights.safetensors, weights_packed.safetensors, command_args.txt)"
