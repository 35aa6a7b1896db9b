// unfold (im2col) and fold (col2im) are each other's adjoint, so each is the other's
// backward. Convolution is unfold followed by a matrix product (convolve fuses the two, and
// depthwise_convolve the product of each channel's own window); pooling reduces the columns.
#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

void check_window(const Window& w, const char* op) {
  if (w.kernel_h < 1 || w.kernel_w < 1 || w.stride_h < 1 || w.stride_w < 1 || w.dilation_h < 1 ||
      w.dilation_w < 1 || w.pad_h < 0 || w.pad_w < 0)
    fail(op, ": invalid window: kernel ", w.kernel_h, "x", w.kernel_w, ", stride ", w.stride_h, "x",
         w.stride_w, ", padding ", w.pad_h, "x", w.pad_w, ", dilation ", w.dilation_h, "x",
         w.dilation_w);
}

std::int64_t window_positions(const Window& w, std::int64_t height, std::int64_t width,
                              const char* op) {
  check_window(w, op);
  const std::int64_t out_h = w.out_h(height), out_w = w.out_w(width);
  if (out_h < 1 || out_w < 1)
    fail(op, ": a ", w.kernel_h, "x", w.kernel_w, " window (stride ", w.stride_h, "x", w.stride_w,
         ", dilation ", w.dilation_h, "x", w.dilation_w, ", padding ", w.pad_h, "x", w.pad_w,
         ") does not fit a ", height, "x", width, " input");
  return out_h * out_w;
}

namespace {

// The gradients of convolve or depthwise_convolve, by the back-end's `backward` member.
template <typename Backward>
std::vector<Tensor> gradients_by(Backward backward, const Tensor& x, const Tensor& weight,
                                 const Tensor& g, const Window& window,
                                 const std::vector<bool>& needs) {
  const Tensor input = x.detach().contiguous();
  const Tensor kernel = weight.detach().contiguous();
  const Tensor grad_x = needs[0] ? Tensor::empty(input.shape(), g.dtype(), g.device()) : Tensor();
  const Tensor grad_weight =
      needs[1] ? Tensor::empty(kernel.shape(), g.dtype(), g.device()) : Tensor();
  (backend_for(g.device()).*backward)(input, kernel, g.contiguous(), window, grad_x, grad_weight);
  return {grad_x, grad_weight};
}

using Gradients = std::vector<Tensor> (*)(const Tensor& x, const Tensor& weight, const Tensor& g,
                                          const Window& window, const std::vector<bool>& needs);

// What convolve and depthwise_convolve share: the checks (fits(x, weight, taps) says whether the
// weight's shape fits the input's; the error names the weight shape `expected` gives), the
// output, the back-end's `forward` and the graph node whose backward is `gradients`.
template <typename Forward, typename Fits, typename Expected>
Tensor convolution(const char* name, const Tensor& x, const Tensor& weight, const Window& window,
                   Fits fits, Expected expected, Forward forward, Gradients gradients) {
  check_window(window, name);
  detail::check_same_dtype(name, x, weight);
  detail::check_same_device(name, x, weight);
  const std::int64_t taps = window.kernel_h * window.kernel_w;
  if (x.dim() != 4 || weight.dim() != 2 || !fits(x.shape(), weight.shape(), taps))
    fail(name, ": input of shape ", x.shape(), " does not fit a weight of shape ", weight.shape(),
         " with a ", window.kernel_h, "x", window.kernel_w, " window (expects [N, C, H, W] and ",
         expected(taps), ")");
  if (!is_floating(x.dtype())) fail(name, ": needs floating-point tensors, got ", describe(x));
  const auto& s = x.shape();
  const std::int64_t count = window_positions(window, s[2], s[3], name);
  Tensor out = Tensor::empty({s[0], weight.shape()[0], count}, x.dtype(), x.device());
  (backend_for(x.device()).*forward)(x.detach().contiguous(), weight.detach().contiguous(), window,
                                     out);
  return autograd::record(
      name, out, {x, weight},
      [name, gradients, sx = autograd::SavedTensor(x), sw = autograd::SavedTensor(weight), window](
          const Tensor& g, const std::vector<bool>& needs) {
        return gradients(sx.get(name), sw.get(name), g, window, needs);
      });
}

}  // namespace

Tensor unfold(const Tensor& x, const Window& window, double pad_value) {
  check_window(window, "unfold");
  if (x.dim() != 4) fail("unfold: expects [N, C, H, W], got shape ", x.shape());
  const auto& s = x.shape();
  const std::int64_t taps = window.kernel_h * window.kernel_w;
  Tensor out = Tensor::empty({s[0], s[1] * taps, window_positions(window, s[2], s[3], "unfold")},
                             x.dtype(), x.device());
  backend_for(x.device()).im2col(x.contiguous(), window, pad_value, out);
  return autograd::record("unfold", out, {x},
                          [window, h = s[2], w = s[3]](const Tensor& g, const std::vector<bool>&) {
                            return std::vector<Tensor>{fold(g, window, h, w)};
                          });
}

Tensor fold(const Tensor& columns, const Window& window, std::int64_t height, std::int64_t width) {
  check_window(window, "fold");
  const std::int64_t taps = window.kernel_h * window.kernel_w;
  const std::int64_t count = window_positions(window, height, width, "fold");
  if (columns.dim() != 3 || columns.shape()[1] % taps != 0 || columns.shape()[2] != count)
    fail("fold: columns of shape ", columns.shape(), " do not match a ", window.kernel_h, "x",
         window.kernel_w, " window over a ", height, "x", width, " input (", count, " positions)");
  Tensor out = Tensor::zeros({columns.shape()[0], columns.shape()[1] / taps, height, width},
                             columns.dtype(), columns.device());
  backend_for(columns.device()).col2im(columns.contiguous(), window, out);
  return autograd::record("fold", out, {columns},
                          [window](const Tensor& g, const std::vector<bool>&) {
                            return std::vector<Tensor>{unfold(g, window)};
                          });
}

Tensor convolve(const Tensor& x, const Tensor& weight, const Window& window) {
  return convolution(
      "convolve", x, weight, window,
      [](const Shape& in, const Shape& w, std::int64_t taps) { return w[1] == in[1] * taps; },
      [](std::int64_t taps) { return concat("[O, C * ", taps, "]"); }, &Backend::conv2d,
      &convolve_gradients);
}

std::vector<Tensor> convolve_gradients(const Tensor& x, const Tensor& weight, const Tensor& g,
                                       const Window& window, const std::vector<bool>& needs) {
  return gradients_by(&Backend::conv2d_backward, x, weight, g, window, needs);
}

Tensor depthwise_convolve(const Tensor& x, const Tensor& weight, const Window& window) {
  return convolution(
      "depthwise_convolve", x, weight, window,
      [](const Shape& in, const Shape& w, std::int64_t taps) {
        return w[1] == taps && (in[1] == 0 ? w[0] == 0 : w[0] % in[1] == 0);
      },
      [](std::int64_t taps) { return concat("[C * M, ", taps, "]"); }, &Backend::depthwise_conv2d,
      &depthwise_convolve_gradients);
}

std::vector<Tensor> depthwise_convolve_gradients(const Tensor& x, const Tensor& weight,
                                                 const Tensor& g, const Window& window,
                                                 const std::vector<bool>& needs) {
  return gradients_by(&Backend::depthwise_conv2d_backward, x, weight, g, window, needs);
}

}  // namespace ds
