#!/usr/bin/python3
"""Writes the PyTorch references of the nn tests into this folder:

- nn_ops.golden: every layer and functional op of nn/functional.hpp (format in
  tests/golden/README.md): inputs, forward output, a random upstream gradient and the gradients
  of the input, weight and bias, plus the updated running statistics of batch norm;
- sequential.golden: a small torch.nn.Sequential (its state dict before and after one training
  step, its training and evaluation outputs);
- sequential_names.txt: that Sequential's parameter, buffer, state-dict and module names in
  PyTorch's order.

Run with Debian's interpreter, which has torch:
    /usr/bin/python3 tests/nn/golden/generate_nn.py

Each op case has an i32 `config` tensor holding the op's non-tensor arguments (the C++ test
reads the same layout, see test_golden_layers.cpp):
    conv2d      stride_h stride_w pad_h pad_w dilation_h dilation_w groups
    max_pool2d  kernel_h kernel_w stride_h stride_w pad_h pad_w ceil_mode
    avg_pool2d  kernel_h kernel_w stride_h stride_w pad_h pad_w   (count_include_pad=True)
    adaptive_avg_pool2d  out_h out_w
    batch_norm  training                                         (momentum 0.1, eps 1e-5)
    log_softmax dim
    nll_loss, cross_entropy  reduction (0 mean, 1 sum)
"""
import os
import sys

import torch
import torch.nn as tnn
import torch.nn.functional as F

SEED = 20240611
HERE = os.path.dirname(os.path.abspath(__file__))
F64 = torch.float64
# Must match the f32 tolerances of tests/nn/test_golden_layers.cpp.
F32_RTOL = 1e-4
F32_ATOL = 1e-5
BN_MOMENTUM = 0.1
BN_EPS = 1e-5

gen = torch.Generator().manual_seed(SEED)


def randn(*shape):
    return torch.randn(shape, dtype=F64, generator=gen)


def small_ints(*shape):
    """Values in {-1, 0, 1, 2}: exact in f32, with many ties for max pooling."""
    return torch.randint(-1, 3, shape, generator=gen).to(F64)


def labels(n, classes):
    return torch.randint(0, classes, (n,), generator=gen).to(torch.int32)


def config(*values):
    return torch.tensor(values, dtype=torch.int32)


CASES = []  # (name, tensors, fn): fn(tensors) -> (output, extra tensors to compare)


def case(name, tensors, fn):
    CASES.append((name, tensors, fn))


# ---- op cases. `tensors` maps input names to values; floating ones named in GRAD_INPUTS get
# gradients. Every fn reads its inputs from that dict.
GRAD_INPUTS = ("x", "weight", "bias")


def add_linear():
    def fn(t):
        return F.linear(t["x"], t["weight"], t.get("bias")), {}

    case("linear_2d", {"x": randn(4, 5), "weight": randn(3, 5), "bias": randn(3)}, fn)
    case("linear_batched", {"x": randn(2, 3, 5), "weight": randn(4, 5), "bias": randn(4)}, fn)
    case("linear_no_bias", {"x": randn(3, 6), "weight": randn(2, 6)}, fn)


def add_conv2d():
    def fn(t):
        s_h, s_w, p_h, p_w, d_h, d_w, groups = t["config"].tolist()
        out = F.conv2d(t["x"], t["weight"], t.get("bias"), stride=(s_h, s_w), padding=(p_h, p_w),
                       dilation=(d_h, d_w), groups=groups)
        return out, {}

    def conv(name, n, c, h, w, o, kh, kw, stride=(1, 1), pad=(0, 0), dilation=(1, 1), groups=1,
             bias=True):
        tensors = {"config": config(*stride, *pad, *dilation, groups), "x": randn(n, c, h, w),
                   "weight": randn(o, c // groups, kh, kw)}
        if bias:
            tensors["bias"] = randn(o)
        case(name, tensors, fn)

    conv("conv2d_basic", 2, 3, 6, 5, 4, 3, 3)
    conv("conv2d_stride_pad", 2, 3, 7, 7, 4, 3, 3, stride=(2, 2), pad=(1, 1))
    conv("conv2d_dilation", 1, 2, 8, 7, 3, 3, 3, pad=(2, 2), dilation=(2, 2))
    conv("conv2d_nonsquare", 2, 2, 7, 8, 3, 2, 3, stride=(2, 1), pad=(1, 0), dilation=(1, 2))
    conv("conv2d_groups", 2, 4, 5, 5, 6, 3, 3, pad=(1, 1), groups=2)
    conv("conv2d_depthwise", 2, 4, 6, 6, 4, 3, 3, stride=(2, 2), pad=(1, 1), groups=4)
    conv("conv2d_depthwise_multiplier", 1, 3, 5, 5, 6, 3, 3, pad=(1, 1), groups=3, bias=False)
    conv("conv2d_pointwise_no_bias", 2, 5, 4, 3, 3, 1, 1, bias=False)
    conv("conv2d_stride_larger_than_kernel", 1, 2, 9, 9, 2, 2, 2, stride=(3, 3), bias=False)


def add_pooling():
    def max_fn(t):
        k_h, k_w, s_h, s_w, p_h, p_w, ceil = t["config"].tolist()
        return F.max_pool2d(t["x"], (k_h, k_w), (s_h, s_w), (p_h, p_w), ceil_mode=bool(ceil)), {}

    def max_pool(name, x, kernel, stride, pad=(0, 0), ceil=False):
        case(name, {"config": config(*kernel, *stride, *pad, int(ceil)), "x": x}, max_fn)

    max_pool("max_pool2d_basic", randn(2, 3, 6, 6), (2, 2), (2, 2))
    max_pool("max_pool2d_overlap_pad", randn(1, 2, 7, 6), (3, 3), (2, 2), (1, 1))
    max_pool("max_pool2d_ceil", randn(1, 2, 7, 7), (2, 2), (2, 2), ceil=True)
    max_pool("max_pool2d_ceil_pad", randn(1, 2, 6, 8), (3, 3), (2, 2), (1, 1), ceil=True)
    max_pool("max_pool2d_nonsquare", randn(1, 2, 6, 7), (2, 3), (2, 1), (1, 1))
    # After a ReLU of shifted values most entries are 0, so many windows hold only zeros: the
    # gradient goes to the first one in the window.
    max_pool("max_pool2d_relu_ties", torch.relu(randn(2, 2, 6, 6) - 0.8), (2, 2), (2, 2))
    max_pool("max_pool2d_int_ties_overlap", small_ints(1, 2, 7, 7), (3, 3), (2, 2), (1, 1))
    max_pool("max_pool2d_relu_ties_ceil", torch.relu(randn(1, 3, 5, 5) - 0.8), (2, 2), (2, 2),
             ceil=True)

    def avg_fn(t):
        k_h, k_w, s_h, s_w, p_h, p_w = t["config"].tolist()
        return F.avg_pool2d(t["x"], (k_h, k_w), (s_h, s_w), (p_h, p_w),
                            count_include_pad=True), {}

    def avg_pool(name, x, kernel, stride, pad=(0, 0)):
        case(name, {"config": config(*kernel, *stride, *pad), "x": x}, avg_fn)

    avg_pool("avg_pool2d_basic", randn(2, 3, 6, 6), (2, 2), (2, 2))
    avg_pool("avg_pool2d_overlap_pad", randn(1, 2, 7, 6), (3, 3), (2, 2), (1, 1))
    avg_pool("avg_pool2d_nonsquare", randn(1, 2, 5, 7), (3, 2), (1, 2), (1, 1))
    avg_pool("avg_pool2d_global", randn(2, 3, 4, 4), (4, 4), (4, 4))

    def adaptive_fn(t):
        out_h, out_w = t["config"].tolist()
        return F.adaptive_avg_pool2d(t["x"], (out_h, out_w)), {}

    def adaptive(name, x, out):
        case(name, {"config": config(*out), "x": x}, adaptive_fn)

    adaptive("adaptive_avg_pool2d_divisible", randn(2, 3, 6, 4), (3, 2))
    adaptive("adaptive_avg_pool2d_global", randn(2, 3, 5, 3), (1, 1))
    adaptive("adaptive_avg_pool2d_non_divisible", randn(1, 2, 7, 5), (3, 2))
    adaptive("adaptive_avg_pool2d_upsampling", randn(1, 2, 3, 2), (4, 3))


def add_batch_norm():
    def fn(t):
        mean, var = t["running_mean"].clone(), t["running_var"].clone()
        training = bool(t["config"][0])
        out = F.batch_norm(t["x"], mean, var, t["weight"], t["bias"], training, BN_MOMENTUM,
                           BN_EPS)
        return out, {"running_mean_after": mean, "running_var_after": var}

    def bn(name, x, training):
        c = x.shape[1]
        case(name, {"config": config(int(training)), "x": x, "weight": randn(c), "bias": randn(c),
                    "running_mean": randn(c), "running_var": 0.5 + torch.rand(c, generator=gen,
                                                                               dtype=F64)}, fn)

    bn("batch_norm_1d_train", 1.5 * randn(6, 4) + 0.7, True)
    bn("batch_norm_2d_train", 2.0 * randn(3, 4, 3, 2) - 0.5, True)
    bn("batch_norm_1d_eval", randn(5, 3), False)
    bn("batch_norm_2d_eval", randn(2, 3, 2, 3), False)


def add_activations_and_losses():
    # relu6 inputs stay 0.25 away from the kinks at 0 and 6.
    magnitude = 0.25 + 2.5 * torch.rand(3, 8, generator=gen, dtype=F64)
    kinks = torch.tensor([0.0, 6.0], dtype=F64)[torch.randint(0, 2, (3, 8), generator=gen)]
    signs = torch.where(torch.rand(3, 8, generator=gen) < 0.5, -1.0, 1.0).to(F64)
    case("relu6", {"x": kinks + signs * magnitude}, lambda t: (F.relu6(t["x"]), {}))

    def log_softmax_fn(t):
        return F.log_softmax(t["x"], dim=int(t["config"][0])), {}

    case("log_softmax_dim1", {"config": config(1), "x": randn(4, 5)}, log_softmax_fn)
    case("log_softmax_dim0", {"config": config(0), "x": randn(3, 4)}, log_softmax_fn)

    def reduction(t):
        return "mean" if int(t["config"][0]) == 0 else "sum"

    def nll_fn(t):
        return F.nll_loss(t["x"], t["target"].long(), reduction=reduction(t)), {}

    def cross_entropy_fn(t):
        return F.cross_entropy(t["x"], t["target"].long(), reduction=reduction(t)), {}

    for red_name, red in (("mean", 0), ("sum", 1)):
        case(f"nll_loss_{red_name}", {"config": config(red),
                                      "x": F.log_softmax(randn(5, 4), dim=1),
                                      "target": labels(5, 4)}, nll_fn)
        case(f"cross_entropy_{red_name}", {"config": config(red), "x": randn(6, 5),
                                           "target": labels(6, 5)}, cross_entropy_fn)
    case("cross_entropy_large_logits", {"config": config(0), "x": 500.0 + 20.0 * randn(4, 3),
                                        "target": labels(4, 3)}, cross_entropy_fn)


# ---- evaluation and output


def evaluate(tensors, fn, dtype, upstream=None):
    """Runs fn in `dtype`; returns (out, extras, grads, upstream) with the gradients of x, weight
    and bias for `upstream` (drawn at random when not given)."""
    inputs = {}
    for key, value in tensors.items():
        if value.is_floating_point():
            value = value.detach().to(dtype).clone().requires_grad_(key in GRAD_INPUTS)
        inputs[key] = value
    out, extras = fn(inputs)
    if upstream is None:
        upstream = randn(*out.shape)
    out.backward(upstream.to(dtype))
    grads = {f"grad_{k}": inputs[k].grad for k in GRAD_INPUTS if k in inputs}
    return out.detach(), {k: v.detach() for k, v in extras.items()}, grads, upstream


def check_f32_robust(name, tensors, fn, reference):
    """The C++ test compares its f32 results with these f64 references under F32_RTOL/F32_ATOL;
    make sure torch's own f32 computation meets them, so an f32 failure there means a bug."""
    out64, extras64, grads64, upstream = reference
    out, extras, grads, _ = evaluate(tensors, fn, torch.float32, upstream)
    pairs = [("out", out, out64)] + [(k, extras[k], extras64[k]) for k in extras64] + [
        (k, grads[k], grads64[k]) for k in grads64]
    for label, got, want in pairs:
        if not torch.allclose(got.to(F64), want, rtol=F32_RTOL, atol=F32_ATOL):
            sys.exit(f"case {name}: torch's f32 {label} is outside the f32 tolerance")


def dtype_name(t):
    return {torch.float64: "f64", torch.float32: "f32", torch.int32: "i32",
            torch.int64: "i32"}[t.dtype]


def format_tensor(key, t):
    name = dtype_name(t)
    values = t.reshape(-1).tolist()
    text = " ".join("%.17g" % v for v in values) if name.startswith("f") else " ".join(
        str(int(v)) for v in values)
    dims = " ".join(str(d) for d in t.shape)
    return f"tensor {key} {name} {t.dim()} {dims} : {text}".replace("  :", " :")


def header(description):
    return [f"# {description}",
            f"# Generated by tests/nn/golden/generate_nn.py (torch {torch.__version__}, "
            f"seed {SEED}). Do not edit by hand."]


def write(path, lines):
    with open(os.path.join(HERE, path), "w") as f:
        f.write("\n".join(lines) + "\n")


def op_cases():
    add_linear()
    add_conv2d()
    add_pooling()
    add_batch_norm()
    add_activations_and_losses()
    lines = header("PyTorch reference values for nn/functional.hpp and nn/layers.hpp.")
    for name, tensors, fn in CASES:
        reference = evaluate(tensors, fn, F64)
        check_f32_robust(name, tensors, fn, reference)
        out, extras, grads, upstream = reference
        lines.append(f"case {name}")
        for key, value in tensors.items():
            lines.append(format_tensor(f"{name}/{key}", value))
        lines.append(format_tensor(f"{name}/out", out))
        lines.append(format_tensor(f"{name}/grad_out", upstream))
        for key, value in list(grads.items()) + list(extras.items()):
            lines.append(format_tensor(f"{name}/{key}", value))
    write("nn_ops.golden", lines)


def sequential_model():
    torch.manual_seed(SEED)
    model = tnn.Sequential(
        tnn.Conv2d(3, 4, 3, padding=1, bias=False),
        tnn.BatchNorm2d(4),
        tnn.ReLU(),
        tnn.Sequential(tnn.Conv2d(4, 6, 3, stride=2, padding=1), tnn.BatchNorm2d(6), tnn.ReLU()),
        tnn.AdaptiveAvgPool2d(1),
        tnn.Flatten(),
        tnn.Linear(6, 5),
    ).to(F64)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, tnn.BatchNorm2d):
                module.weight.copy_(1.0 + 0.3 * randn(module.num_features))
                module.bias.copy_(0.3 * randn(module.num_features))
    return model


def sequential_cases():
    """One training-mode forward (which updates the running statistics) and one evaluation
    forward, with the state dict before and after."""
    model = sequential_model()
    lines = header("A small torch.nn.Sequential: state dicts and outputs in training and eval.")
    lines.append("case sequential")
    for key, value in model.state_dict().items():
        lines.append(format_tensor(f"sequential/before.{key}", value))
    x_train, x_eval = randn(4, 3, 6, 6), randn(2, 3, 6, 6)
    model.train()
    with torch.no_grad():
        out_train = model(x_train)
    model.eval()
    with torch.no_grad():
        out_eval = model(x_eval)
    for key, value in model.state_dict().items():
        lines.append(format_tensor(f"sequential/after.{key}", value))
    lines.append(format_tensor("sequential/x_train", x_train))
    lines.append(format_tensor("sequential/out_train", out_train))
    lines.append(format_tensor("sequential/x_eval", x_eval))
    lines.append(format_tensor("sequential/out_eval", out_eval))
    write("sequential.golden", lines)

    names = ["# Names of the model in sequential.golden, in PyTorch's order: parameters, buffers,",
             "# state dict and modules (the root excluded), and the parameter count.",
             f"# Generated by tests/nn/golden/generate_nn.py (torch {torch.__version__})."]
    names += [f"parameter {k}" for k, _ in model.named_parameters()]
    names += [f"buffer {k}" for k, _ in model.named_buffers()]
    names += [f"state {k}" for k in model.state_dict()]
    names += [f"module {k} {type(m).__name__}" for k, m in model.named_modules() if k]
    names.append(f"parameter_count {sum(p.numel() for p in model.parameters())}")
    write("sequential_names.txt", names)


def main():
    op_cases()
    sequential_cases()


if __name__ == "__main__":
    main()
