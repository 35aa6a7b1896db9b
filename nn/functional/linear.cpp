// Linear and convolution layers as matrix products: convolution multiplies the weight by its
// input unfolded into columns (im2col); without groups that is one `convolve` node, and with a
// group per input channel (depthwise) one `depthwise_convolve` node.
#include "autograd/function.hpp"
#include "autograd/grad_mode.hpp"
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

// The sums over N, H and W of g [N, C, H, W] (a bias's gradient): a product with a column of
// ones, then column_sums, rather than a transposed copy and a reduction.
Tensor channel_sums(const Tensor& g) {
  const auto& s = g.shape();
  const Tensor ones = Tensor::ones({s[2] * s[3], 1}, g.dtype(), g.device());
  return column_sums(matmul(g.reshape({s[0], s[1], s[2] * s[3]}), ones).reshape({s[0], s[1]}));
}

// out + bias over the channels of [N, C, H, W], added in place into the product's fresh output
// (its node saved only its inputs).
Tensor add_channel_bias(const Tensor& out, const Tensor& bias) {
  {
    NoGradGuard no_grad;
    out.detach().add_(bias.reshape({1, out.shape()[1], 1, 1}));
  }
  return autograd::record(
      "conv2d_bias", out, {out, bias}, [](const Tensor& g, const std::vector<bool>& needs) {
        return std::vector<Tensor>{needs[0] ? g : Tensor(), needs[1] ? channel_sums(g) : Tensor()};
      });
}

Window window_of(const Tensor& weight, const Conv2dParams& p) {
  return {weight.shape()[2], weight.shape()[3], p.stride_h,   p.stride_w,
          p.pad_h,           p.pad_w,           p.dilation_h, p.dilation_w};
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
                            return linear_gradients(sx.get("linear"), sw.get("linear"), g, needs);
                          });
}

std::vector<Tensor> linear_gradients(const Tensor& x, const Tensor& weight, const Tensor& g,
                                     const std::vector<bool>& needs) {
  // x [..., in] and g [..., out] as matrices of rows.
  const Tensor input = x.reshape({-1, weight.shape()[1]});
  const Tensor grad = g.reshape({-1, weight.shape()[0]});
  std::vector<Tensor> grads{needs[0] ? matmul(grad, weight).reshape(x.shape()) : Tensor(),
                            needs[1] ? matmul(grad.t(), input) : Tensor()};
  if (needs.size() > 2) grads.push_back(needs[2] ? column_sums(grad) : Tensor());
  return grads;
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
  const Window window = window_of(weight, p);
  const std::int64_t out_h = window.out_h(x.shape()[2]), out_w = window.out_w(x.shape()[3]);
  const std::int64_t taps = weight.shape()[1] * weight.shape()[2] * weight.shape()[3];
  const std::int64_t positions = out_h * out_w;

  Tensor out;
  if (groups == 1) {
    out = convolve(x, weight.reshape({out_channels, taps}), window);  // [N, O, L]
  } else if (groups == channels) {
    out = depthwise_convolve(x, weight.reshape({out_channels, taps}), window);
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

std::vector<Tensor> conv2d_gradients(const Tensor& x, const Tensor& weight, const Tensor& g,
                                     const Conv2dParams& params, const std::vector<bool>& needs) {
  std::vector<Tensor> grads;
  if (params.groups == 1 || params.groups == x.shape()[1]) {
    const auto& w = weight.shape();
    const auto& s = g.shape();
    const auto gradients = params.groups == 1 ? convolve_gradients : depthwise_convolve_gradients;
    grads = gradients(x, weight.reshape({w[0], w[1] * w[2] * w[3]}),
                      g.reshape({s[0], s[1], s[2] * s[3]}), window_of(weight, params),
                      {needs[0], needs[1]});
    if (needs[1]) grads[1] = grads[1].reshape(w);
  } else if (needs[0] || needs[1]) {
    // A grouped convolution is a composition of ops with no backward of its own: its graph is
    // recorded again on detached inputs and run backward.
    struct RecordingOn {
      bool previous = GradMode::enabled();
      RecordingOn() { GradMode::set_enabled(true); }
      ~RecordingOn() { GradMode::set_enabled(previous); }
    } recording;
    const Tensor input = x.detach().requires_grad_(needs[0]);
    const Tensor kernel = weight.detach().requires_grad_(needs[1]);
    conv2d(input, kernel, Tensor(), params).backward(g);
    grads = {needs[0] ? input.grad() : Tensor(), needs[1] ? kernel.grad() : Tensor()};
  } else {
    grads = {Tensor(), Tensor()};
  }
  if (needs.size() > 2) grads.push_back(needs[2] ? channel_sums(g) : Tensor());
  return grads;
}

}  // namespace ds::nn::functional
