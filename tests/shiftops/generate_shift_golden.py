#!/usr/bin/python3
"""Writes shift_layers.golden: PyTorch references for the DeepShift-PS and DeepShift-Q layers
(DESIGN.md section 2), for a small linear and a small convolution of each method.

Run with Debian's interpreter, which has torch:
    /usr/bin/python3 tests/shiftops/generate_shift_golden.py

The layers are written out here with torch.autograd.Function straight-through estimators, as
the original DeepShift's ste.py does, but with DESIGN.md's fixed-point clamp (top at
2^(I-1) - 2^-F, not the original's 2^(I-1) - 1). The fixture carries every input and parameter,
so the C++ test does not depend on either side's random generator.

Each case holds:
    config      i32; linear: in out bias weight_bits I F
                conv2d: in out kh kw stride_h stride_w pad_h pad_w dilation_h dilation_w
                groups bias weight_bits I F
    x           the layer input
    shift, sign (PS) or weight (Q): the stored parameters before the forward; some lie outside
                the weight range so that the in-place clamp is exercised
    bias
    out         the forward result
    grad_out    the upstream gradient
    grad_x, grad_bias, and grad_shift + grad_sign (PS) or grad_weight (Q)
    clamped     the stored shift (PS) or weight (Q) after the forward's in-place clamp
    effective   the weight the forward used: 0 or +-2^k

All inputs are float32 values (stored as f64), so that fixed() and the rounding of shifts and
exponents give the same answer in the C++ f32 layers; no shift lies within 1e-3 of a half-way
point except the exact x.5 values put there on purpose (round half to even), and no Q weight's
log2 magnitude does either.
"""
import os
import sys

import torch
import torch.nn.functional as F

SEED = 20261127
HERE = os.path.dirname(os.path.abspath(__file__))
F64 = torch.float64
# Must match kRtol/kAtol of test_shift_golden.cpp.
F32_RTOL = 1e-5
F32_ATOL = 1e-5

gen = torch.Generator().manual_seed(SEED)


def f32_exact(t):
    return t.to(torch.float32).to(F64)


def uniform(low, high, *shape):
    return f32_exact(torch.rand(shape, dtype=F64, generator=gen) * (high - low) + low)


def randn(*shape, scale=1.0):
    return f32_exact(torch.randn(shape, dtype=F64, generator=gen) * scale)


def away_from_half(t, margin=1e-3):
    """Moves values whose fractional part is within `margin` of .5 (but not exactly .5) away."""
    frac = t - torch.floor(t)
    near = ((frac - 0.5).abs() < margin) & (frac != 0.5)
    return f32_exact(torch.where(near, t + 4 * margin, t))


def put(t, values):
    """Writes edge values over the first elements of t (row-major)."""
    flat = t.reshape(-1).clone()
    flat[: len(values)] = torch.tensor(values, dtype=F64)
    return flat.reshape(t.shape)


# ---- the straight-through functions


class Fixed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, integer_bits, fraction_bits):
        scale = 2.0 ** fraction_bits
        low = -(2.0 ** (integer_bits - 1))
        high = 2.0 ** (integer_bits - 1) - 2.0 ** -fraction_bits
        return torch.clamp(torch.floor(x * scale) / scale, low, high)

    @staticmethod
    def backward(ctx, g):
        return g, None, None


class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)  # half to even

    @staticmethod
    def backward(ctx, g):
        return g


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.sign(x)

    @staticmethod
    def backward(ctx, g):
        return g


class UnsymGradMul(torch.autograd.Function):
    """magnitude * sign whose sign gradient is not scaled by the magnitude (DeepShift-PS)."""

    @staticmethod
    def forward(ctx, magnitude, sign):
        ctx.save_for_backward(sign)
        return magnitude * sign

    @staticmethod
    def backward(ctx, g):
        (sign,) = ctx.saved_tensors
        return g * sign, g


class RoundPowerOf2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        magnitude = w.abs()
        nonzero = magnitude != 0
        safe = torch.where(nonzero, magnitude, torch.ones_like(magnitude))
        rounded = torch.sign(w) * 2.0 ** torch.round(torch.log2(safe))
        return torch.where(nonzero, rounded, torch.zeros_like(w))

    @staticmethod
    def backward(ctx, g):
        return g


def ps_range(bits):
    return -(2 ** (bits - 1) - 2), 0


def q_range(bits):
    return -(2 ** (bits - 1) - 1), 0


def ps_weight(params, bits):
    low, high = ps_range(bits)
    with torch.no_grad():
        params["shift"].clamp_(low, high)
    magnitude = 2.0 ** RoundSTE.apply(params["shift"])
    sign = SignSTE.apply(RoundSTE.apply(params["sign"]))
    return UnsymGradMul.apply(magnitude, sign)


def q_weight(params, bits):
    low, high = q_range(bits)
    with torch.no_grad():
        w = params["weight"]
        w.copy_(torch.sign(w) * w.abs().clamp(2.0 ** low, 2.0 ** high))
    return RoundPowerOf2.apply(params["weight"])


# ---- cases


CASES = []  # (name, method, kind, config, tensors)


def linear_case(name, method, inp, out, bits, integer_bits, fraction_bits, tensors):
    config = [inp, out, 1, bits, integer_bits, fraction_bits]
    CASES.append((name, method, "linear", config, tensors))


def conv_case(name, method, conv, bits, integer_bits, fraction_bits, tensors):
    config = conv + [1, bits, integer_bits, fraction_bits]
    CASES.append((name, method, "conv2d", config, tensors))


def ps_params(shape, shift_low, shift_high, bits):
    low, _ = ps_range(bits)
    shift = away_from_half(uniform(shift_low, shift_high, *shape))
    # Exact half-way shifts (half to even: -2.5 -> -2, -3.5 -> -4), one above the range and one
    # below it, and signs exactly half-way (-> 0), zero and negative zero.
    shift = put(shift, [-2.5, -3.5, 0.75, low - 3.25, -1.5, -0.5])
    sign = away_from_half(uniform(-1.0, 1.0, *shape))
    sign = put(sign, [0.5, -0.5, 0.0, -0.0, 1.5, -0.75])
    return shift, sign


def q_weights(shape, bits):
    low, _ = q_range(bits)
    w = uniform(-1.2, 1.2, *shape)
    # Zero, negative zero, above 2^0, below 2^smin (both signs).
    w = put(w, [0.0, -0.0, 3.0, -2.5, 2.0 ** (low - 3), -(2.0 ** (low - 5))])
    log2 = torch.log2(w.abs().clamp(2.0 ** low, 1.0))
    frac = log2 - torch.floor(log2)
    if ((frac - 0.5).abs() < 1e-3).any():
        sys.exit("a Q weight lies too close to a half-way exponent; change the seed")
    return w


def add_cases():
    # Linear PS, I=4 F=4: inputs beyond +-8 are clamped, the rest floored to 1/16.
    shift, sign = ps_params((4, 6), -16.0, 1.0, 5)
    x = put(randn(3, 6, scale=3.0), [9.0, -12.5, -0.0, 7.96875, -8.0, 0.03])
    linear_case("linear_ps", "PS", 6, 4, 5, 4, 4,
                {"x": x, "shift": shift, "sign": sign, "bias": put(uniform(-1, 1, 4), [20.0])})

    # Linear Q, 4-bit weights (range [-7, 0]), I=4 F=3.
    x = put(randn(3, 6, scale=3.0), [8.5, -9.0, -0.0])
    linear_case("linear_q", "Q", 6, 4, 4, 4, 3,
                {"x": x, "weight": q_weights((4, 6), 4), "bias": put(uniform(-1, 1, 4), [-9.0])})

    # Conv PS, 3-bit weights (shift range [-2, 0]), grouped, strided, padded, 3x2 kernel.
    shift, sign = ps_params((4, 2, 3, 2), -4.0, 1.0, 3)
    conv_case("conv_ps", "PS", [4, 4, 3, 2, 2, 1, 1, 1, 1, 1, 2], 3, 6, 8,
              {"x": randn(2, 4, 5, 5, scale=2.0), "shift": shift, "sign": sign,
               "bias": uniform(-1, 1, 4)})

    # Conv Q, 5-bit weights, dilated and padded, default 16.16 activations.
    conv_case("conv_q", "Q", [3, 2, 3, 3, 1, 1, 2, 2, 2, 2, 1], 5, 16, 16,
              {"x": randn(2, 3, 5, 5, scale=2.0), "weight": q_weights((2, 3, 3, 3), 5),
               "bias": uniform(-1, 1, 2)})


def run(method, kind, config, tensors, dtype, upstream):
    params = {k: v.detach().to(dtype).clone().requires_grad_() for k, v in tensors.items()}
    bits, integer_bits, fraction_bits = config[-3:]
    x = Fixed.apply(params["x"], integer_bits, fraction_bits)
    bias = Fixed.apply(params["bias"], integer_bits, fraction_bits)
    weight = ps_weight(params, bits) if method == "PS" else q_weight(params, bits)
    if kind == "linear":
        out = F.linear(x, weight, bias)
    else:
        _, _, _, _, sh, sw, ph, pw, dh, dw, groups = config[:11]
        out = F.conv2d(x, weight, bias, (sh, sw), (ph, pw), (dh, dw), groups)
    if upstream is None:
        upstream = randn(*out.shape)
    out.backward(upstream.to(dtype))
    stored = "shift" if method == "PS" else "weight"
    results = {"out": out, "grad_out": upstream, "clamped": params[stored], "effective": weight}
    for k, v in params.items():
        results["grad_" + k] = v.grad
    return {k: v.detach().to(F64) for k, v in results.items()}


def dtype_name(t):
    return {torch.float64: "f64", torch.int32: "i32"}[t.dtype]


def format_tensor(key, t):
    name = dtype_name(t)
    values = t.reshape(-1).tolist()
    text = " ".join("%.17g" % v for v in values) if name == "f64" else " ".join(
        str(int(v)) for v in values)
    dims = " ".join(str(d) for d in t.shape)
    return f"tensor {key} {name} {t.dim()} {dims} : {text}".replace("  :", " :")


def main():
    add_cases()
    lines = ["# PyTorch reference values for shiftops/layers.hpp (DeepShift-PS and -Q layers).",
             f"# Generated by tests/shiftops/generate_shift_golden.py (torch {torch.__version__}, "
             f"seed {SEED}). Do not edit by hand."]
    for name, method, kind, config, tensors in CASES:
        reference = run(method, kind, config, tensors, F64, None)
        check = run(method, kind, config, tensors, torch.float32, reference["grad_out"])
        for key, want in reference.items():
            if not torch.allclose(check[key], want, rtol=F32_RTOL, atol=F32_ATOL):
                sys.exit(f"case {name}: torch's f32 {key} is outside the f32 tolerance")
        lines.append(f"case {name}")
        lines.append(format_tensor(f"{name}/config", torch.tensor(config, dtype=torch.int32)))
        for key, value in list(tensors.items()) + list(reference.items()):
            lines.append(format_tensor(f"{name}/{key}", value))
    with open(os.path.join(HERE, "shift_layers.golden"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
