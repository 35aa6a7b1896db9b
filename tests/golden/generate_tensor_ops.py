#!/usr/bin/python3
"""Writes tests/golden/tensor_ops.golden: PyTorch reference values for every op in tensor/ops.hpp.

Run with Debian's interpreter, which has torch:
    /usr/bin/python3 tests/golden/generate_tensor_ops.py
The format is described in tests/golden/README.md. Every case stores its inputs (a, b, c, ...),
its forward output (out) and, for differentiable cases, a random upstream gradient (grad_out)
and the input gradients it produces (grad_a, ...). References are computed in float64.
"""
import os
import sys

import torch

SEED = 20240607
HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "tensor_ops.golden")

gen = torch.Generator().manual_seed(SEED)
F64 = torch.float64
# Must match the f32 tolerances of tests/golden/test_golden_ops.cpp.
F32_RTOL = 1e-5
F32_ATOL = 1e-5


def randn(*shape):
    return torch.randn(shape, dtype=F64, generator=gen)


def uniform(low, high, *shape):
    return low + (high - low) * torch.rand(shape, dtype=F64, generator=gen)


def away_from_zero(*shape):
    """Random values with |v| >= 0.25, so abs/sign/relu stay differentiable under f32 rounding."""
    magnitude = uniform(0.25, 2.0, *shape)
    signs = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(F64)
    return magnitude * signs


def grid(values, *shape):
    """Exactly representable values (also in f32) for forward-only corner cases."""
    return torch.tensor(values, dtype=F64).reshape(shape)


CASES = []  # (name, inputs, fn, differentiable)


def case(name, inputs, fn, grad=True):
    CASES.append((name, inputs, fn, grad))


def binary_broadcast_shapes():
    return [
        ("same", (3, 4), (3, 4)),
        ("scalar_right", (3, 4), ()),
        ("scalar_left", (), (3, 4)),
        ("col_row", (3, 1), (1, 4)),
        ("leading", (2, 3, 4), (4,)),
        ("leading_left", (4,), (2, 3, 4)),
        ("middle", (2, 1, 4), (3, 1)),
    ]


def add_arithmetic():
    for suffix, sa, sb in binary_broadcast_shapes():
        case(f"add_{suffix}", [randn(*sa), randn(*sb)], torch.add)
        case(f"sub_{suffix}", [randn(*sa), randn(*sb)], torch.sub)
        case(f"mul_{suffix}", [randn(*sa), randn(*sb)], torch.mul)
        case(f"div_{suffix}", [randn(*sa), away_from_zero(*sb)], torch.div)
        case(f"maximum_{suffix}", [randn(*sa), randn(*sb)], torch.maximum)
        case(f"minimum_{suffix}", [randn(*sa), randn(*sb)], torch.minimum)
    # Ties share the gradient equally (documented in ops.hpp, as torch does).
    ties_a = grid([0.5, 1.0, -1.5, 2.0, 0.25, -0.75], 2, 3)
    ties_b = grid([0.5, 0.0, -1.5, 3.0, 0.25, -1.0], 2, 3)
    case("maximum_ties", [ties_a, ties_b], torch.maximum)
    case("minimum_ties", [ties_a, ties_b], torch.minimum)

    case("pow_tt_same", [uniform(0.5, 2.0, 3, 4), randn(3, 4)], torch.pow)
    case("pow_tt_broadcast", [uniform(0.5, 2.0, 3, 1), randn(1, 4)], torch.pow)
    case("pow_tt_scalar_exponent", [uniform(0.5, 2.0, 2, 3), randn()], torch.pow)
    for label, exponent in [("2", 2.0), ("3", 3.0), ("neg1", -1.0)]:
        case(f"pow_ts_{label}", [away_from_zero(3, 4)], lambda x, e=exponent: torch.pow(x, e))
    for label, exponent in [("half", 0.5), ("neg1p5", -1.5), ("2p5", 2.5)]:
        case(f"pow_ts_{label}", [uniform(0.5, 2.0, 3, 4)], lambda x, e=exponent: torch.pow(x, e))
    case("pow_st_2", [randn(3, 4)], lambda x: torch.pow(2.0, x))
    case("pow_st_2_integers", [grid([-3.0, -1.0, 0.0, 1.0, 4.0, 10.0], 6)],
         lambda x: torch.pow(2.0, x))
    case("pow_st_3", [randn(3, 4)], lambda x: torch.pow(3.0, x))
    case("neg", [randn(3, 4)], torch.neg)
    case("neg_scalar", [randn()], torch.neg)

    # The operator overloads with one double operand.
    case("op_tensor_plus_scalar", [randn(2, 3)], lambda x: x + 1.5)
    case("op_tensor_minus_scalar", [randn(2, 3)], lambda x: x - 1.5)
    case("op_tensor_times_scalar", [randn(2, 3)], lambda x: x * -2.5)
    case("op_tensor_div_scalar", [randn(2, 3)], lambda x: x / 4.0)
    case("op_scalar_plus_tensor", [randn(2, 3)], lambda x: 1.5 + x)
    case("op_scalar_minus_tensor", [randn(2, 3)], lambda x: 1.5 - x)
    case("op_scalar_times_tensor", [randn(2, 3)], lambda x: -2.5 * x)
    case("op_scalar_div_tensor", [away_from_zero(2, 3)], lambda x: 3.0 / x)
    case("op_negate", [randn(2, 3)], lambda x: -x)
    # Binary ops on non-contiguous operands (a transposed view).
    case("add_transposed", [randn(4, 3), randn(3, 4)], lambda a, b: a.t() + b)
    case("mul_transposed_broadcast", [randn(4, 3), randn(3, 1)], lambda a, b: a.t() * b)


def add_unary():
    positive = lambda *shape: uniform(0.5, 2.0, *shape)
    case("exp", [randn(3, 4)], torch.exp)
    case("exp_scalar", [randn()], torch.exp)
    case("exp2", [randn(3, 4)], torch.exp2)
    case("log", [positive(3, 4)], torch.log)
    case("log2", [positive(3, 4)], torch.log2)
    case("sqrt", [positive(3, 4)], torch.sqrt)
    case("abs", [away_from_zero(3, 4)], torch.abs)
    case("sign", [away_from_zero(3, 4)], torch.sign)
    case("sign_zero", [grid([-2.0, -0.0, 0.0, 0.5, 3.0, -0.25], 6)], torch.sign, grad=False)
    case("floor", [3.0 * randn(3, 4)], torch.floor)
    case("floor_corners", [grid([-2.5, -2.0, -0.5, 0.0, 0.5, 1.0, 1.999, -1.001], 8)],
         torch.floor, grad=False)
    case("round", [3.0 * randn(3, 4)], torch.round)
    case("round_half_even", [grid([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49, -0.51, 4.5], 10)],
         torch.round, grad=False)
    # Values away from the bounds -0.5 and 0.8 (at a bound the gradient is a convention).
    around_bounds = grid([-2.0, -0.9, -0.3, 0.1, 0.4, 0.7, 1.3, 2.2, -1.7, 0.6, 1.1, -0.2], 3, 4)
    case("clamp_both", [around_bounds],
         lambda x: torch.clamp(x, -0.5, 0.8))
    case("clamp_low", [around_bounds],
         lambda x: torch.clamp(x, min=-0.5))
    case("clamp_high", [around_bounds],
         lambda x: torch.clamp(x, max=0.8))
    case("clamp_at_bounds", [grid([-1.0, -0.5, 0.0, 0.75, 1.0, 2.0], 6)],
         lambda x: torch.clamp(x, -0.5, 0.75), grad=False)
    case("relu", [away_from_zero(3, 4)], torch.relu)
    case("relu_zero", [grid([-1.0, 0.0, 2.0, -0.0], 4)], torch.relu, grad=False)
    case("exp_permuted", [randn(2, 3, 4)], lambda x: torch.exp(x.permute(2, 0, 1)))


def add_compare():
    a = grid([0.0, 0.5, -1.0, 2.0, 1.25, -0.75, 3.0, 0.5, -2.0, 1.0, 0.25, -0.5], 3, 4)
    b = grid([0.0, 1.0, -1.0, 0.25], 4)
    for name, fn in [("eq", torch.eq), ("ne", torch.ne), ("lt", torch.lt), ("le", torch.le),
                     ("gt", torch.gt), ("ge", torch.ge)]:
        case(f"{name}_broadcast", [a.clone(), b.clone()], fn, grad=False)
    cond = torch.tensor([[1], [0], [1]], dtype=torch.uint8)
    case("where_broadcast", [cond, randn(3, 4), randn(4)],
         lambda c, x, y: torch.where(c.bool(), x, y))
    full_cond = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.uint8)
    case("where_same", [full_cond, randn(2, 4), randn(2, 4)],
         lambda c, x, y: torch.where(c.bool(), x, y))
    case("where_scalar_operand", [full_cond, randn(2, 4), randn()],
         lambda c, x, y: torch.where(c.bool(), x, y))


def add_reductions():
    x_shape = (2, 3, 4)
    dim_sets = [("all", None), ("d0", (0,)), ("d1", (1,)), ("dlast", (-1,)), ("d02", (0, 2))]
    for label, dims in dim_sets:
        for keep in (False, True):
            suffix = f"{label}_keep" if keep else label
            all_dims = tuple(range(len(x_shape))) if dims is None else dims
            case(f"sum_{suffix}", [randn(*x_shape)],
                 lambda x, d=all_dims, k=keep: torch.sum(x, d, keepdim=k))
            case(f"mean_{suffix}", [randn(*x_shape)],
                 lambda x, d=all_dims, k=keep: torch.mean(x, d, keepdim=k))
            case(f"max_{suffix}", [randn(*x_shape)],
                 lambda x, d=all_dims, k=keep: torch.amax(x, d, keepdim=k))
            case(f"min_{suffix}", [randn(*x_shape)],
                 lambda x, d=all_dims, k=keep: torch.amin(x, d, keepdim=k))
            for correction in (1, 0):
                case(f"var_c{correction}_{suffix}", [randn(*x_shape)],
                     lambda x, d=all_dims, k=keep, c=correction:
                     torch.var(x, d, correction=c, keepdim=k))
    case("sum_transposed", [randn(3, 4)], lambda x: torch.sum(x.t(), (1,)))
    case("max_ties", [grid([1.0, 3.0, 3.0, -1.0, 2.0, 2.0], 2, 3)], lambda x: torch.amax(x, (1,)))
    case("min_ties_all", [grid([1.0, -3.0, 0.5, -3.0, 2.0, -3.0], 2, 3)],
         lambda x: torch.amin(x, (0, 1)))
    for name, fn in [("argmax", torch.argmax), ("argmin", torch.argmin)]:
        case(f"{name}_all", [randn(*x_shape)], lambda x, f=fn: f(x).to(torch.int32), grad=False)
        for dim in (0, 1, -1):
            for keep in (False, True):
                suffix = f"d{dim}".replace("-", "m") + ("_keep" if keep else "")
                case(f"{name}_{suffix}", [randn(*x_shape)],
                     lambda x, f=fn, d=dim, k=keep: f(x, d, keepdim=k).to(torch.int32),
                     grad=False)
    case("sum_to_col", [randn(2, 3, 4)], lambda x: x.sum_to_size(3, 1))
    case("sum_to_row", [randn(2, 3, 4)], lambda x: x.sum_to_size(4))
    case("sum_to_same", [randn(3, 4)], lambda x: x.sum_to_size(3, 4))


def add_softmax():
    for dim in (0, 1, 2, -1):
        label = f"d{dim}".replace("-", "m")
        case(f"softmax_{label}", [2.0 * randn(2, 3, 4)], lambda x, d=dim: torch.softmax(x, d))
        case(f"log_softmax_{label}", [2.0 * randn(2, 3, 4)],
             lambda x, d=dim: torch.log_softmax(x, d))
    # Large logits: a naive exp would overflow.
    case("softmax_large", [grid([1000.0, 1001.0, 999.0, -1000.0, 0.0, 1.0], 2, 3)],
         lambda x: torch.softmax(x, 1))
    case("log_softmax_large", [grid([1000.0, 1001.0, 999.0, -1000.0, 0.0, 1.0], 2, 3)],
         lambda x: torch.log_softmax(x, 1))


def add_matmul():
    case("matmul_2d", [randn(3, 4), randn(4, 5)], torch.matmul)
    case("matmul_batched", [randn(2, 3, 4), randn(2, 4, 5)], torch.matmul)
    case("matmul_batched_2d", [randn(2, 3, 4), randn(4, 5)], torch.matmul)
    case("matmul_batch_broadcast", [randn(1, 3, 4), randn(2, 4, 5)], torch.matmul)
    case("matmul_vec_mat", [randn(4), randn(4, 5)], torch.matmul)
    case("matmul_mat_vec", [randn(3, 4), randn(4)], torch.matmul)
    case("matmul_vec_vec", [randn(4), randn(4)], torch.matmul)
    case("matmul_transposed", [randn(4, 3), randn(5, 4)], lambda a, b: torch.matmul(a.t(), b.t()))


def dtype_name(t):
    return {torch.float64: "f64", torch.int32: "i32", torch.uint8: "u8", torch.bool: "u8"}[t.dtype]


def format_tensor(key, t):
    t = t.detach()
    name = dtype_name(t)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    values = t.reshape(-1).tolist()
    text = " ".join("%.17g" % v for v in values) if name == "f64" else " ".join(
        str(int(v)) for v in values)
    dims = " ".join(str(d) for d in t.shape)
    head = f"tensor {key} {name} {t.dim()}" + (f" {dims}" if dims else "")
    return f"{head} : {text}"


def forward_backward(inputs, fn, grad, dtype, upstream=None):
    """Returns (leaves, out), after out.backward(upstream) when `upstream` is given."""
    leaves = []
    for x in inputs:
        x = x.clone().to(dtype) if x.is_floating_point() else x.clone()
        if grad and x.is_floating_point():
            x.requires_grad_(True)
        leaves.append(x)
    out = fn(*leaves)
    if upstream is not None:
        out.backward(upstream.to(out.dtype))
    return leaves, out


def check_f32_robust(name, inputs, fn, grad, out64, leaves64, upstream):
    """The C++ test compares its f32 results against these f64 references with the tolerances
    below; make sure torch's own f32 computation passes them, so a failure there means a bug
    and not an input too close to a rounding or branch point."""
    leaves, out = forward_backward(inputs, fn, grad, torch.float32, upstream)
    pairs = [("out", out, out64)]
    pairs += [(f"grad {i}", x.grad, x64.grad) for i, (x, x64) in enumerate(zip(leaves, leaves64))
              if x64.grad is not None]
    for label, got, want in pairs:
        if not want.is_floating_point():
            ok = torch.equal(got, want)
        else:
            ok = torch.allclose(got.to(F64), want.detach(), rtol=F32_RTOL, atol=F32_ATOL)
        if not ok:
            sys.exit(f"case {name}: torch's f32 {label} is outside the f32 tolerance")


def run_case(name, inputs, fn, grad):
    leaves, out = forward_backward(inputs, fn, grad, F64)
    lines = [f"case {name}"]
    letters = "abcdefgh"
    lines += [format_tensor(f"{name}/{letters[i]}", x) for i, x in enumerate(leaves)]
    lines.append(format_tensor(f"{name}/out", out))
    upstream = None
    if grad:
        upstream = randn(*out.shape)
        out.backward(upstream)
        lines.append(format_tensor(f"{name}/grad_out", upstream))
        for i, x in enumerate(leaves):
            if x.requires_grad:
                g = x.grad if x.grad is not None else torch.zeros_like(x)
                lines.append(format_tensor(f"{name}/grad_{letters[i]}", g))
    check_f32_robust(name, inputs, fn, grad, out, leaves, upstream)
    return lines


def main():
    add_arithmetic()
    add_unary()
    add_compare()
    add_reductions()
    add_softmax()
    add_matmul()
    names = [c[0] for c in CASES]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        sys.exit(f"duplicate case names: {sorted(duplicates)}")
    lines = [
        "# PyTorch reference values for tensor/ops.hpp; see tests/golden/README.md.",
        f"# Generated by tests/golden/generate_tensor_ops.py (torch {torch.__version__}, "
        f"seed {SEED}). Do not edit by hand.",
    ]
    for c in CASES:
        lines += run_case(*c)
    with open(OUTPUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(CASES)} cases to {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")


if __name__ == "__main__":
    main()
