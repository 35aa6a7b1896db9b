#!/usr/bin/env python3
"""PyTorch's side of bench_cuda_train: images/s of the same training steps (forward,
cross-entropy, backward, SGD momentum 0.9 with weight decay 1e-4) on the GPU, for the MNIST
conv model (batch 64) and CIFAR resnet20 (batch 128), and the host time of small ops. Prints
"<name> <figure>" lines.
PyTorch defaults are kept (cuDNN on, TF32 for convolutions as PyTorch ships it)."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MnistConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(800, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return F.log_softmax(self.fc2(x), dim=1)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:  # option A: subsample and zero-pad the channels
            pad = (cout - cin) // 2
            self.shortcut = lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, pad))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.shortcut(x) if self.shortcut else x))


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                layers.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def images_per_second(model, shape, steps):
    device = torch.device("cuda")
    model = model.to(device).train()
    sgd = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(*shape, device=device)
    labels = torch.randint(0, 10, (shape[0],), device=device)

    def step():
        sgd.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        sgd.step()

    return shape[0] / seconds_per_call(step, steps, warmup=3)


def seconds_per_call(call, count, warmup):
    """Wall time per call of `count` calls queued back to back, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        call()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / count


def host_microseconds_per_op(op):
    """Host time per op on one-element tensors, as bench_cuda_train's host costs."""
    return seconds_per_call(op, 2000, warmup=1) * 1e6


def main():
    if not torch.cuda.is_available():
        print("bench_pytorch_train: no CUDA device", file=sys.stderr)
        return 1
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    torch.manual_seed(1)
    print(f"conv {images_per_second(MnistConv(), (64, 1, 28, 28), steps):.1f}")
    print(f"resnet20 {images_per_second(ResNet20(), (128, 3, 32, 32), steps):.1f}")
    a, b = torch.randn(1, device="cuda"), torch.randn(1, device="cuda")
    tracked = torch.randn(1, device="cuda", requires_grad=True)
    out = torch.empty(1, device="cuda")
    print(f"host_us_empty {host_microseconds_per_op(lambda: torch.empty(1, device='cuda')):.1f}")
    print(f"host_us_fill_ {host_microseconds_per_op(lambda: out.fill_(1.0)):.1f}")
    print(f"host_us_add {host_microseconds_per_op(lambda: torch.add(a, b)):.1f}")
    print(f"host_us_add_autograd {host_microseconds_per_op(lambda: torch.add(tracked, b)):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
