// Linear and convolution layers as matrix products: convolution unfolds its input into columns
// (im2col) and multiplies by the weight, so its backward is the matmul's and unfold's.
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (weight.dim() != 2 || x.dim() == 0 || x.shape().back() != weight.shape()[1])
    fail("linear: input of shape ", x.shape(), " does not fit a weight of shape ", weight.shape(),
         " (expects [..., ", weight.dim() == 2 ? weight.shape()[1] : -1, "])");
  const Tensor out = matmul(x, weight.t());
  return bias.defined() ? out + bias : out;
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
  const Tensor columns = unfold(x, window);  // [N, C * kh * kw, L]
  const std::int64_t taps = weight.shape()[1] * weight.shape()[2] * weight.shape()[3];
  const std::int64_t positions = out_h * out_w;

  Tensor out;
  if (groups == 1) {
    out = matmul(weight.reshape({out_channels, taps}), columns);  // [N, O, L]
  } else {
    // One batched product over the groups: [G, O/G, K] @ [G, K, N * L].
    const Tensor grouped = columns.reshape({n, groups, taps, positions})
                               .permute({1, 2, 0, 3})
                               .reshape({groups, taps, n * positions});
    out = matmul(weight.reshape({groups, out_channels / groups, taps}), grouped)
              .reshape({groups, out_channels / groups, n, positions})
              .permute({2, 0, 1, 3});
  }
  out = out.reshape({n, out_channels, out_h, out_w});
  return bias.defined() ? out + bias.reshape({1, out_channels, 1, 1}) : out;
}

}  // namespace ds::nn::functional
