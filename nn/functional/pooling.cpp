// Pooling through unfold: each window becomes a column, which is then reduced. Max pooling
// records its own backward so that the gradient goes to the first maximum of each window; on
// the CPU it runs as direct loops over the windows instead.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

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

// Whether any of the values is NaN, from the bits (a vectorised integer maximum: GCC does not
// vectorise the quiet float compares that a NaN test needs).
template <typename T>
bool contains_nan(const T* values, std::int64_t count) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits magnitude = std::numeric_limits<Bits>::max() >> 1;
  Bits largest = 0;
#pragma omp simd reduction(max : largest)
  for (std::int64_t i = 0; i < count; ++i)
    largest = std::max(largest, std::bit_cast<Bits>(values[i]) & magnitude);
  return largest > std::bit_cast<Bits>(std::numeric_limits<T>::infinity());
}

// The common 2x2 window with stride 2 and no padding over a plane without NaN: plain compares
// give the first maximum, as selects that the compiler vectorises across an output row. The
// general loop's branches mispredict about once per window on the maximum's position.
// Rows short of whole registers (12 outputs from a 24-wide map, 4 from an 8-wide one) spent most
// of their time in the scalar remainder, so every row but the plane's last runs on to a multiple
// of 8 outputs (8 floats fill the 256-bit registers GCC uses here), as far as the plane's end:
// the outputs past the row land on the plane's next rows, which are computed afterwards and
// overwrite them, and the inputs they read lie within the plane's next rows.
// (A [1280, 24, 24] input took 0.12 ms instead of 0.47, [3200, 8, 8] 0.15 instead of 0.37.)
template <typename T>
void max_pool_2x2(const T* src, T* dst, std::int32_t* idx, std::int64_t out_h, std::int64_t out_w,
                  std::int64_t width) {
  constexpr std::int64_t kRegister = 8;
  const std::int64_t whole_registers = (out_w + kRegister - 1) / kRegister * kRegister;
  for (std::int64_t oh = 0; oh < out_h; ++oh) {
    const std::int64_t count = std::min(whole_registers, (out_h - oh) * out_w);
    const auto top = static_cast<std::int32_t>(2 * oh * width);
    const auto bottom = static_cast<std::int32_t>(top + width);
    const T* row0 = src + top;
    const T* row1 = src + bottom;
    T* values = dst + oh * out_w;
    std::int32_t* at = idx + oh * out_w;
#pragma omp simd
    for (std::int32_t ow = 0; ow < count; ++ow) {
      const std::int32_t left = 2 * ow;
      const T a = row0[left], b = row0[left + 1], c = row1[left], d = row1[left + 1];
      const T upper = b > a ? b : a, lower = d > c ? d : c;
      const std::int32_t upper_at = b > a ? top + left + 1 : top + left;
      const std::int32_t lower_at = d > c ? bottom + left + 1 : bottom + left;
      values[ow] = lower > upper ? lower : upper;
      at[ow] = lower > upper ? lower_at : upper_at;
    }
  }
}

// The same first-maximum pooling as take_first_max over unfolded windows, as direct loops on
// the CPU: no column copy, and the backward scatters into the input through saved indices.
// Padding taps read -inf; an index of -1 (a window whose first maximum is padding) takes no
// gradient, as fold drops the gradient of padding.
template <typename T>
void max_pool_planes(const T* in, T* out, std::int32_t* index, std::int64_t planes,
                     std::int64_t height, std::int64_t width, const Window& w) {
  const std::int64_t out_h = w.out_h(height), out_w = w.out_w(width);
  const bool parallel = planes > 1 && planes * out_h * out_w * w.kernel_h * w.kernel_w >= 32768;
  const bool plain_2x2 = w.kernel_h == 2 && w.kernel_w == 2 && w.stride_h == 2 && w.stride_w == 2 &&
                         w.pad_h == 0 && w.pad_w == 0 && w.dilation_h == 1 && w.dilation_w == 1;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const T* src = in + plane * height * width;
    T* dst = out + plane * out_h * out_w;
    std::int32_t* idx = index + plane * out_h * out_w;
    if (plain_2x2 && !contains_nan(src, height * width)) {
      max_pool_2x2(src, dst, idx, out_h, out_w, width);
      continue;
    }
    if (w.pad_h == 0 && w.pad_w == 0) {  // every tap inside: no bounds checks
      for (std::int64_t oh = 0; oh < out_h; ++oh) {
        for (std::int64_t ow = 0; ow < out_w; ++ow) {
          std::int64_t best_at = oh * w.stride_h * width + ow * w.stride_w;
          T best = src[best_at];
          for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
            const std::int64_t row = (oh * w.stride_h + ki * w.dilation_h) * width;
            for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
              const std::int64_t at = row + ow * w.stride_w + kj * w.dilation_w;
              const T v = src[at];
              if (best == best && (v != v || v > best)) {
                best = v;
                best_at = at;
              }
            }
          }
          dst[oh * out_w + ow] = best;
          idx[oh * out_w + ow] = static_cast<std::int32_t>(best_at);
        }
      }
      continue;
    }
    for (std::int64_t oh = 0; oh < out_h; ++oh) {
      for (std::int64_t ow = 0; ow < out_w; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        std::int64_t best_at = -1;
        bool first = true;
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
          const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
          for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
            const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
            const bool inside = ih >= 0 && ih < height && iw >= 0 && iw < width;
            const T v = inside ? src[ih * width + iw] : -std::numeric_limits<T>::infinity();
            // NaN wins, and the first of equal maxima is kept (as argmax does).
            if (first || (best == best && (v != v || v > best))) {
              best = v;
              best_at = inside ? ih * width + iw : -1;
            }
            first = false;
          }
        }
        dst[oh * out_w + ow] = best;
        idx[oh * out_w + ow] = static_cast<std::int32_t>(best_at);
      }
    }
  }
}

// The shape a pooling window gives x [N, C, H, W]; a window that does not fit is refused.
Shape pooled_shape(const Tensor& x, const Window& window, const char* op) {
  const auto& s = x.shape();
  window_positions(window, s[2], s[3], op);
  return {s[0], s[1], window.out_h(s[2]), window.out_w(s[3])};
}

Tensor max_pool_direct(const Tensor& x, const Window& window) {
  const auto& s = x.shape();
  const Tensor input = x.detach().contiguous();
  const Shape out_shape = pooled_shape(x, window, "max_pool2d");
  Tensor out = Tensor::empty(out_shape, x.dtype());
  Tensor index = Tensor::empty(out_shape, DType::i32);
  dispatch_floating(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_planes(input.data<T>(), out.data<T>(), index.data<std::int32_t>(), s[0] * s[1], s[2],
                    s[3], window);
  });
  return autograd::record(
      "max_pool2d", out, {x}, [index, in_shape = s](const Tensor& g, const std::vector<bool>&) {
        const Tensor grad = g.contiguous();
        Tensor grad_in = Tensor::empty(in_shape, g.dtype());  // zeroed plane by plane below
        const std::int64_t planes = in_shape[0] * in_shape[1];
        const std::int64_t plane_in = in_shape[2] * in_shape[3];
        const std::int64_t plane_out = index.numel() / std::max<std::int64_t>(planes, 1);
        dispatch_floating(g.dtype(), "max_pool2d backward", [&](auto tag) {
          using T = typename decltype(tag)::type;
          const T* go = grad.data<T>();
          const std::int32_t* idx = index.data<std::int32_t>();
          T* gi = grad_in.data<T>();
#pragma omp parallel for schedule(static) if (planes > 1 && index.numel() >= 32768)
          for (std::int64_t plane = 0; plane < planes; ++plane) {
            T* plane_grad = gi + plane * plane_in;
            // Zeroed just before its gradients land, while it is in cache.
            std::fill(plane_grad, plane_grad + plane_in, T(0));
            for (std::int64_t o = plane * plane_out; o < (plane + 1) * plane_out; ++o)
              if (idx[o] >= 0) plane_grad[idx[o]] += go[o];
          }
        });
        return std::vector<Tensor>{grad_in};
      });
}

// fn(output position, input position) for every tap of every window of a plane that lies inside
// it, in the taps' order within a window (the order of unfold's columns).
template <typename Fn>
void for_each_tap_inside(std::int64_t height, std::int64_t width, const Window& w, Fn fn) {
  const std::int64_t out_h = w.out_h(height), out_w = w.out_w(width);
  for (std::int64_t oh = 0; oh < out_h; ++oh)
    for (std::int64_t ow = 0; ow < out_w; ++ow)
      for (std::int64_t ki = 0; ki < w.kernel_h; ++ki) {
        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
        if (ih < 0 || ih >= height) continue;
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj) {
          const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
          if (iw >= 0 && iw < width) fn(oh * out_w + ow, ih * width + iw);
        }
      }
}

// Average pooling as direct loops on the CPU: each window's sum over its taps divided by the
// window's size, padding counted as zeros (PyTorch's count_include_pad). Through unfold, small
// windows cost a copy of one value per tap and plane (a 2x2 pool of [128, 64, 16, 16] took 4.1 ms
// forward, 2.5 ms backward; these loops 2.6 and 2.1-2.8 ms).
Tensor avg_pool_direct(const Tensor& x, const Window& window, const Shape& out_shape) {
  const auto& s = x.shape();
  const Tensor input = x.detach().contiguous();
  const std::int64_t planes = s[0] * s[1], plane_in = s[2] * s[3];
  const std::int64_t plane_out = out_shape[2] * out_shape[3];
  const double size = static_cast<double>(window.kernel_h * window.kernel_w);
  const bool parallel =
      planes > 1 && planes * plane_out * window.kernel_h * window.kernel_w >= 32768;
  Tensor out = Tensor::zeros(out_shape, x.dtype());
  dispatch_floating(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = input.data<T>();
    T* o = out.data<T>();
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
      const T* src = in + plane * plane_in;
      T* dst = o + plane * plane_out;
      for_each_tap_inside(s[2], s[3], window, [&](std::int64_t at_out, std::int64_t at_in) {
        dst[at_out] += src[at_in];
      });
      for (std::int64_t i = 0; i < plane_out; ++i) dst[i] /= static_cast<T>(size);
    }
  });
  // Backward spreads each output's gradient over its window's taps inside the plane: a product
  // per tap by 1 / size, not a division (the same values where the size is a power of two, as
  // for the common windows; within a rounding step elsewhere).
  const auto backward = [window, in_shape = s, planes, plane_in, plane_out, size, parallel](
                            const Tensor& g, const std::vector<bool>&) {
    const Tensor grad = g.contiguous();
    Tensor grad_in = Tensor::empty(in_shape, g.dtype());  // zeroed plane by plane below
    dispatch_floating(g.dtype(), "avg_pool2d backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* go = grad.data<T>();
      T* gi = grad_in.data<T>();
      const T share = static_cast<T>(1.0 / size);
#pragma omp parallel for schedule(static) if (parallel)
      for (std::int64_t plane = 0; plane < planes; ++plane) {
        const T* from = go + plane * plane_out;
        T* to = gi + plane * plane_in;
        // Zeroed just before its gradients land, while it is in cache.
        std::fill(to, to + plane_in, T(0));
        for_each_tap_inside(
            in_shape[2], in_shape[3], window,
            [&](std::int64_t at_out, std::int64_t at_in) { to[at_in] += from[at_out] * share; });
      }
    });
    return std::vector<Tensor>{grad_in};
  };
  return autograd::record("avg_pool2d", out, {x}, backward);
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
  check_window(window, "max_pool2d");
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
  if (x.device().is_cpu()) return max_pool_direct(x, window);
  const Tensor columns = window_columns(x, window, -std::numeric_limits<double>::infinity());
  return to_image(take_first_max(columns), x, window);
}

Tensor avg_pool2d(const Tensor& x, const Window& window) {
  check_image(x, "avg_pool2d");
  const Shape out_shape = pooled_shape(x, window, "avg_pool2d");
  // A window over the whole image (global pooling: the CIFAR ResNets' and MobileNetV2's last
  // pool) is the mean over each plane. (A window as large as the image fits it, as checked
  // above, only without dilation.)
  const bool whole_image = window.kernel_h == x.shape()[2] && window.kernel_w == x.shape()[3] &&
                           window.pad_h == 0 && window.pad_w == 0;
  if (whole_image) return mean(x, {2, 3}, /*keepdim=*/true);
  if (x.device().is_cpu() && is_floating(x.dtype())) return avg_pool_direct(x, window, out_shape);
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
