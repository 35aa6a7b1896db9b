// Linear and convolution layers as matrix products: convolution multiplies the weight by its
// input unfolded into columns (im2col); without groups that is one `convolve` node.
#include "autograd/function.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

namespace {

// Sums over the rows of a [N, C] matrix, as a product with a row of ones (one GEMM pass
// instead of a transposed copy and a reduction).
Tensor column_sums(const Tensor& m) {
  const Tensor ones = Tensor::ones({1, m.shape()[0]}, m.dtype(), m.device());
  return matmul(ones, m).reshape({m.shape()[1]});
}

// out + bias over the channels of [N, C, H, W], added in place into the product's fresh output
// (its node saved only its inputs); the bias's gradient is a product with a column of ones
// rather than a transposed copy and a reduction.
Tensor add_channel_bias(const Tensor& out, const Tensor& bias) {
  const auto& s = out.shape();
  {
    NoGradGuard no_grad;
    out.detach().add_(bias.reshape({1, s[1], 1, 1}));
  }
  return autograd::record(
      "conv2d_bias", out, {out, bias}, [s](const Tensor& g, const std::vector<bool>& needs) {
        Tensor grad_bias;
        if (needs[1]) {
          const Tensor ones = Tensor::ones({s[2] * s[3], 1}, g.dtype(), g.device());
          grad_bias =
              column_sums(matmul(g.reshape({s[0], s[1], s[2] * s[3]}), ones).reshape({s[0], s[1]}));
        }
        return std::vector<Tensor>{needs[0] ? g : Tensor(), grad_bias};
      });
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dim() != 2 || x.dim() == 0 || x.shape().back() != weight.shape()[1])
    fail("linear: input of shape ", x.shape(), " does not fit a weight of shape ", weight.shape(),
         " (expects [..., ", weight.dim() == 2 ? weight.shape()[1] : -1, "])");
  if (x.dim() != 2) {
    Shape out_shape = x.shape();
    out_shape.back() = weight.shape()[0];
    return linear(x.reshape({-1, weight.shape()[1]}), weight, bias).reshape(out_shape);
  }
  // One node for product and bias: the bias is added in place, and backward runs the two
  // products and the bias's column sum directly, without the generic broadcast machinery.
  Tensor out;
  {
    NoGradGuard no_grad;
    out = matmul(x, weight.t());
    if (bias.defined()) out.add_(bias);
  }
  return autograd::record("linear", out, {x, weight, bias},
                          [sx = autograd::SavedTensor(x), sw = autograd::SavedTensor(weight)](
                              const Tensor& g, const std::vector<bool>& needs) {
                            const Tensor& input = sx.get("linear");
                            return std::vector<Tensor>{
                                needs[0] ? matmul(g, sw.get("linear")) : Tensor(),
                                needs[1] ? matmul(g.t(), input) : Tensor(),
                                needs[2] ? column_sums(g) : Tensor()};
                          });
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  if (x.dim() != 4 || weight.dim() != 4)
    fail("conv2d: expects input [N, C, H, W] and weight [O, C/groups, kh, kw], got ", x.shape(),
         " and ", weight.shape());
  const std::int64_t n = x.shape()[0], channels = x.shape()[1];
  const std::int64_t out_channels = weight.shape()[0], groups = p.groups;
  if (groups < 1 || channels % groups != 0 || out_channels % groups != 0 ||
      weight.shape()[1] * groups != channels)
    fail("conv2d: input of shape ", x.shape(), " does not fit weight ", weight.shape(), " with ",
         groups, " groups");
  if (bias.defined() && bias.shape() != Shape{out_channels})
    fail("conv2d: bias of shape ", bias.shape(), " for ", out_channels, " output channels");
  const Window window{weight.shape()[2], weight.shape()[3], p.stride_h,   p.stride_w,
                      p.pad_h,           p.pad_w,           p.dilation_h, p.dilation_w};
  const std::int64_t out_h = window.out_h(x.shape()[2]), out_w = window.out_w(x.shape()[3]);
  const std::int64_t taps = weight.shape()[1] * weight.shape()[2] * weight.shape()[3];
  const std::int64_t positions = out_h * out_w;

  Tensor out;
  if (groups == 1) {
    out = convolve(x, weight.reshape({out_channels, taps}), window);  // [N, O, L]
  } else {
    // One batched product over the groups: [G, O/G, K] @ [G, K, N * L].
    const Tensor columns = unfold(x, window);  // [N, C * kh * kw, L]
    const Tensor grouped = columns.reshape({n, groups, taps, positions})
                               .permute({1, 2, 0, 3})
                               .reshape({groups, taps, n * positions});
    out = matmul(weight.reshape({groups, out_channels / groups, taps}), grouped)
              .reshape({groups, out_channels / groups, n, positions})
              .permute({2, 0, 1, 3});
  }
  out = out.reshape({n, out_channels, out_h, out_w});
  return bias.defined() ? add_channel_bias(out, bias) : out;
}

}  // namespace ds::nn::functional
