#!/usr/bin/python3
"""Writes the fixtures of tests/weights: a small PyTorch model exported by
tools/export_torch_weights.py, and its input and eval-mode logits.

    /usr/bin/python3 tests/weights/generate_fixture.py

small_model.safetensors  the weights, exported from a checkpoint saved as the original DeepShift
                         trainers save it ({'state_dict': ...} with DataParallel's 'module.'
                         prefix), so the test covers the script's unwrapping too
small_model.golden       case small_model: input [2, 3, 6, 6] and logits [2, 5] (f32), in the
                         format of tests/golden/README.md
The model must stay in step with small_model() in test_weights.cpp.
"""
import os
import subprocess
import sys
import tempfile

import torch

SEED = 20240611
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXPORTER = os.path.join(ROOT, "tools", "export_torch_weights.py")


def small_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 5),
    )


def golden_line(key, tensor):
    values = " ".join("%.17g" % v for v in tensor.reshape(-1).tolist())
    dims = " ".join(str(d) for d in tensor.shape)
    return f"tensor {key} f32 {tensor.dim()} {dims} : {values}\n"


def main():
    torch.manual_seed(SEED)
    model = small_model()
    with torch.no_grad():
        # Non-trivial BN affine parameters and running statistics (three batches tracked).
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(3):
            model(torch.randn(8, 3, 6, 6) * 2 + 0.5)
        model.eval()
        x = torch.randn(2, 3, 6, 6)
        logits = model(x)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = os.path.join(tmp, "checkpoint.pth.tar")
        wrapped = {"module." + k: v for k, v in model.state_dict().items()}
        # torch 1.13's weights_only loader refuses plain floats: the accuracy is a tensor.
        torch.save({"epoch": 3, "arch": "small", "state_dict": wrapped,
                    "best_acc1": torch.tensor(0.0)}, checkpoint)
        subprocess.run([sys.executable, EXPORTER, checkpoint,
                        "-o", os.path.join(HERE, "small_model.safetensors"),
                        "--metadata", "fixture=tests/weights/generate_fixture.py"], check=True)

    with open(os.path.join(HERE, "small_model.golden"), "w") as out:
        out.write("# Written by tests/weights/generate_fixture.py: input and eval-mode logits of "
                  "small_model.safetensors\n")
        out.write("case small_model\n")
        out.write(golden_line("small_model/input", x))
        out.write(golden_line("small_model/logits", logits))


if __name__ == "__main__":
    main()
