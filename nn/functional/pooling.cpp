// Pooling through unfold: each window becomes a column, which is then reduced. Max pooling
// records its own backward so that the gradient goes to the first maximum of each window.
#include <cmath>
#include <limits>

#include "autograd/function.hpp"
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

namespace {

void check_image(const Tensor& x, const char* op) {
  if (x.dim() != 4) fail(op, ": expects [N, C, H, W], got shape ", x.shape());
}

// Windows of every channel as columns: [N * C, kh * kw, L].
Tensor window_columns(const Tensor& x, const Window& window, double pad_value) {
  const auto& s = x.shape();
  return unfold(x.reshape({s[0] * s[1], 1, s[2], s[3]}), window, pad_value);
}

Tensor to_image(const Tensor& pooled, const Tensor& x, const Window& window) {
  const auto& s = x.shape();
  return pooled.reshape({s[0], s[1], window.out_h(s[2]), window.out_w(s[3])});
}

// Picks, for every column position, the tap holding the first maximum.
Tensor take_first_max(const Tensor& columns) {
  const Tensor index = argmax(columns, 1, /*keepdim=*/true);  // [M, 1, L]
  Tensor values = max(columns.detach(), {1});
  const std::int64_t taps = columns.shape()[1];
  return autograd::record(
      "max_pool2d", values, {columns}, [index, taps](const Tensor& g, const std::vector<bool>&) {
        const Tensor tap = Tensor::arange(0, static_cast<double>(taps), 1, DType::i32)
                               .reshape({1, taps, 1})
                               .to(index.device());
        const Tensor chosen = eq(tap, index);
        return std::vector<Tensor>{
            where(chosen, g.unsqueeze(1), Tensor::scalar(0, g.dtype(), g.device()))};
      });
}

}  // namespace

namespace {

// Rows or columns of -inf to add at the far edge so that floor-mode windows give ceil-mode's count.
std::int64_t ceil_mode_extra(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                             std::int64_t pad) {
  std::int64_t out = (in + 2 * pad - kernel + stride - 1) / stride + 1;
  if ((out - 1) * stride >= in + pad) --out;
  return std::max<std::int64_t>(0, (out - 1) * stride + kernel - (in + 2 * pad));
}

Tensor pad_far_edge(const Tensor& x, std::int64_t dim, std::int64_t extra) {
  if (extra == 0) return x;
  Shape shape = x.shape();
  shape[dim] = extra;
  const Tensor fill =
      Tensor::full(shape, -std::numeric_limits<double>::infinity(), x.dtype(), x.device());
  return cat({x, fill}, dim);
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Window& window, bool ceil_mode) {
  check_image(x, "max_pool2d");
  if (ceil_mode) {
    const Tensor padded = pad_far_edge(
        pad_far_edge(x, 2,
                     ceil_mode_extra(x.shape()[2], window.kernel_h, window.stride_h, window.pad_h)),
        3, ceil_mode_extra(x.shape()[3], window.kernel_w, window.stride_w, window.pad_w));
    return max_pool2d(padded, window, false);
  }
  if (window.pad_h * 2 > window.kernel_h || window.pad_w * 2 > window.kernel_w)
    fail("max_pool2d: padding ", window.pad_h, "x", window.pad_w,
         " must be at most half the kernel ", window.kernel_h, "x", window.kernel_w);
  const Tensor columns = window_columns(x, window, -std::numeric_limits<double>::infinity());
  return to_image(take_first_max(columns), x, window);
}

Tensor avg_pool2d(const Tensor& x, const Window& window) {
  check_image(x, "avg_pool2d");
  return to_image(mean(window_columns(x, window, 0.0), {1}), x, window);
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::int64_t out_h, std::int64_t out_w) {
  check_image(x, "adaptive_avg_pool2d");
  if (out_h < 1 || out_w < 1)
    fail("adaptive_avg_pool2d: output size ", out_h, "x", out_w, " is invalid");
  const std::int64_t h = x.shape()[2], w = x.shape()[3];
  if (h % out_h == 0 && w % out_w == 0) {
    const Window even{h / out_h, w / out_w, h / out_h, w / out_w};
    return avg_pool2d(x, even);
  }
  std::vector<Tensor> rows;
  for (std::int64_t i = 0; i < out_h; ++i) {
    const std::int64_t h0 = i * h / out_h, h1 = ((i + 1) * h + out_h - 1) / out_h;
    std::vector<Tensor> cells;
    for (std::int64_t j = 0; j < out_w; ++j) {
      const std::int64_t w0 = j * w / out_w, w1 = ((j + 1) * w + out_w - 1) / out_w;
      cells.push_back(mean(x.slice(2, h0, h1).slice(3, w0, w1), {2, 3}));
    }
    rows.push_back(stack(cells, 2));
  }
  return stack(rows, 2);
}

}  // namespace ds::nn::functional
