// Depthwise convolution (groups = input channels) plane by plane. Each input plane is copied
// once into a zero-padded plane in the thread's scratch; an output plane is then the sum over
// the window's taps of the tap's weight times the padded plane read at the tap's offset: for
// stride 1 one vector loop per tap over the output rows laid out as wide as the padded ones,
// for other strides row by row. The input gradient adds the same products the other way, into
// a padded gradient plane, and the weight gradient keeps them per tap and position over the
// batch. The grouped product this replaces unfolded kh * kw copies of every input (9x for
// MobileNetV2's 3x3 layers), permuted them, and multiplied one weight row per channel.
#include <omp.h>

#include <algorithm>
#include <numeric>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/thread_buffers.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

struct Depthwise {
  std::int64_t batch, channels, multiplier, height, width;
  Window window;
  std::int64_t out_h, out_w, padded_w;

  Depthwise(const Tensor& x, const Tensor& weight, const Window& w)
      : batch(x.shape()[0]),
        channels(x.shape()[1]),
        multiplier(channels == 0 ? 0 : weight.shape()[0] / channels),
        height(x.shape()[2]),
        width(x.shape()[3]),
        window(w),
        out_h(w.out_h(height)),
        out_w(w.out_w(width)),
        padded_w(width + 2 * w.pad_w) {}

  std::int64_t plane() const { return height * width; }
  std::int64_t positions() const { return out_h * out_w; }
  std::int64_t taps() const { return window.kernel_h * window.kernel_w; }
  // The window's reach never passes the padding, (out_h - 1) * stride + (kh - 1) * dilation
  // < height + 2 * pad: Window::out_h counts only positions whose taps all lie in it.
  std::int64_t padded_size() const { return (height + 2 * window.pad_h) * padded_w; }
  // Where output position (0, 0) reads through kernel tap (ky, kx) in the padded plane.
  std::int64_t tap_offset(std::int64_t ky, std::int64_t kx) const {
    return ky * window.dilation_h * padded_w + kx * window.dilation_w;
  }
  // With stride 1, output row oy reads padded row oy + ky * dilation from column kx * dilation
  // on: laid out padded_w apart ("wide rows", the gaps ignored), an output plane is one run per
  // tap, a long vector loop even on 4x4 maps.
  bool unit_stride() const { return window.stride_h == 1 && window.stride_w == 1; }
  std::int64_t wide_size() const { return (out_h - 1) * padded_w + out_w; }
  // A thread's scratch: the padded plane, then for stride 1 the wide rows.
  std::int64_t scratch_size() const { return padded_size() + (unit_stride() ? wide_size() : 0); }
  // Output plane m of input plane `plane` (image * channels + channel): where its weights start
  // and where it starts.
  std::int64_t kernel_of(std::int64_t plane, std::int64_t m) const {
    return (plane % channels * multiplier + m) * taps();
  }
  std::int64_t output_of(std::int64_t plane, std::int64_t m) const {
    return (plane * multiplier + m) * positions();
  }
  // The products of a tap a weight gradient keeps (add_products).
  std::int64_t product_span() const { return unit_stride() ? wide_size() : out_w; }
};

// The plane with its zero border, every value written once.
template <typename T>
void pad_plane(const Depthwise& s, const T* plane, T* padded) {
  const std::int64_t pad_h = s.window.pad_h, pad_w = s.window.pad_w;
  std::fill(padded, padded + pad_h * s.padded_w, T(0));
  T* row = padded + pad_h * s.padded_w;
  for (std::int64_t y = 0; y < s.height; ++y, row += s.padded_w, plane += s.width) {
    std::fill(row, row + pad_w, T(0));
    std::copy(plane, plane + s.width, row + pad_w);
    std::fill(row + pad_w + s.width, row + s.padded_w, T(0));
  }
  std::fill(row, padded + s.padded_size(), T(0));
}

// For each tap: body(its index, where output position (0, 0) reads it in the padded plane).
template <typename Body>
void for_each_tap(const Depthwise& s, Body body) {
  for (std::int64_t ky = 0; ky < s.window.kernel_h; ++ky)
    for (std::int64_t kx = 0; kx < s.window.kernel_w; ++kx)
      body(ky * s.window.kernel_w + kx, s.tap_offset(ky, kx));
}

// A strided window's rows: body(output row, a tap's index, where the row reads it).
template <typename Body>
void for_each_tap_row(const Depthwise& s, Body body) {
  for (std::int64_t oy = 0; oy < s.out_h; ++oy)
    for_each_tap(s, [&](std::int64_t tap, std::int64_t offset) {
      body(oy, tap, offset + oy * s.window.stride_h * s.padded_w);
    });
}

// A gradient plane [out_h, out_w] as wide rows, the gaps zero.
template <typename T>
void widen(const Depthwise& s, const T* plane, T* wide) {
  for (std::int64_t oy = 0; oy < s.out_h; ++oy) {
    T* row = wide + oy * s.padded_w;
    std::copy(plane + oy * s.out_w, plane + (oy + 1) * s.out_w, row);
    if (oy + 1 < s.out_h) std::fill(row + s.out_w, row + s.padded_w, T(0));
  }
}

// out = sum over taps of weight * padded plane at the tap.
template <typename T>
void convolve_plane(const Depthwise& s, const T* padded, const T* kernel, T* wide, T* out) {
  if (s.unit_stride()) {
    const std::int64_t n = s.wide_size();
    std::fill(wide, wide + n, T(0));
    for_each_tap(s, [&](std::int64_t tap, std::int64_t offset) {
      const T weight = kernel[tap];
      const T* in = padded + offset;
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i) wide[i] += weight * in[i];
    });
    for (std::int64_t oy = 0; oy < s.out_h; ++oy)
      std::copy(wide + oy * s.padded_w, wide + oy * s.padded_w + s.out_w, out + oy * s.out_w);
    return;
  }
  std::fill(out, out + s.positions(), T(0));
  const std::int64_t stride = s.window.stride_w;
  for_each_tap_row(s, [&](std::int64_t oy, std::int64_t tap, std::int64_t offset) {
    const T weight = kernel[tap];
    T* row = out + oy * s.out_w;
    for (std::int64_t ox = 0; ox < s.out_w; ++ox) row[ox] += weight * padded[offset + ox * stride];
  });
}

// The adjoint: padded_grad += each tap's weight * grad at the tap.
template <typename T>
void scatter_plane(const Depthwise& s, const T* grad, const T* kernel, T* wide, T* padded_grad) {
  if (s.unit_stride()) {
    const std::int64_t n = s.wide_size();
    widen(s, grad, wide);
    for_each_tap(s, [&](std::int64_t tap, std::int64_t offset) {
      const T weight = kernel[tap];
      T* to = padded_grad + offset;
#pragma omp simd
      for (std::int64_t i = 0; i < n; ++i) to[i] += weight * wide[i];
    });
    return;
  }
  const std::int64_t stride = s.window.stride_w;
  for_each_tap_row(s, [&](std::int64_t oy, std::int64_t tap, std::int64_t offset) {
    const T weight = kernel[tap];
    const T* row = grad + oy * s.out_w;
    for (std::int64_t ox = 0; ox < s.out_w; ++ox)
      padded_grad[offset + ox * stride] += weight * row[ox];
  });
}

// products[t][i] += grad * padded plane at tap t, for the weight gradient: position i of the
// wide rows, or for a strided window column i (the rows added up). Summed over a channel's
// whole batch before the positions are added up, once per channel (product_sum): a reduction
// per plane and tap left its vector's tail and lanes to scalar adds that cost more than the
// products on small maps.
template <typename T>
void add_products(const Depthwise& s, const T* padded, const T* grad, T* wide, T* products) {
  if (s.unit_stride()) widen(s, grad, wide);
  const std::int64_t span = s.product_span(), stride = s.window.stride_w;
  for_each_tap(s, [&](std::int64_t tap, std::int64_t offset) {
    T* sums = products + tap * span;
    if (s.unit_stride()) {
      const T* in = padded + offset;
#pragma omp simd
      for (std::int64_t i = 0; i < span; ++i) sums[i] += wide[i] * in[i];
      return;
    }
    for (std::int64_t oy = 0; oy < s.out_h; ++oy) {
      const T* row = grad + oy * s.out_w;
      const T* in = padded + offset + oy * s.window.stride_h * s.padded_w;
      for (std::int64_t ox = 0; ox < s.out_w; ++ox) sums[ox] += row[ox] * in[ox * stride];
    }
  });
}

// The sum of a tap's products (add_products) in double. The wide rows' gaps are left out: their
// products are 0 times whatever the plane holds there, NaN for an infinite input the tap never
// reaches.
template <typename T>
double product_sum(const Depthwise& s, const T* products) {
  if (!s.unit_stride()) return std::accumulate(products, products + s.out_w, 0.0);
  double sum = 0;
  for (std::int64_t oy = 0; oy < s.out_h; ++oy)
    sum = std::accumulate(products + oy * s.padded_w, products + oy * s.padded_w + s.out_w, sum);
  return sum;
}

}  // namespace

void CpuBackend::depthwise_conv2d(const Tensor& x, const Tensor& weight, const Window& window,
                                  const Tensor& out) {
  const Depthwise s(x, weight, window);
  const int threads = omp_get_max_threads();
  dispatch_floating(x.dtype(), "depthwise conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    T* po = out.data<T>();
    ThreadBuffers<T> buffers(threads, s.scratch_size());
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t plane = 0; plane < s.batch * s.channels; ++plane) {
      T* padded = buffers.of_thread();
      pad_plane(s, px + plane * s.plane(), padded);
      for (std::int64_t m = 0; m < s.multiplier; ++m)
        convolve_plane(s, padded, pw + s.kernel_of(plane, m), padded + s.padded_size(),
                       po + s.output_of(plane, m));
    }
  });
}

void CpuBackend::depthwise_conv2d_backward(const Tensor& x, const Tensor& weight,
                                           const Tensor& grad_out, const Window& window,
                                           const Tensor& grad_x, const Tensor& grad_weight) {
  const Depthwise s(x, weight, window);
  const int threads = omp_get_max_threads();
  dispatch_floating(x.dtype(), "depthwise conv2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pg = grad_out.data<T>();
    ThreadBuffers<T> buffers(threads, s.scratch_size());
    if (grad_x.defined()) {
      T* pgx = grad_x.data<T>();
#pragma omp parallel for schedule(static) num_threads(threads)
      for (std::int64_t plane = 0; plane < s.batch * s.channels; ++plane) {
        T* padded = buffers.of_thread();
        std::fill(padded, padded + s.padded_size(), T(0));
        for (std::int64_t m = 0; m < s.multiplier; ++m)
          scatter_plane(s, pg + s.output_of(plane, m), pw + s.kernel_of(plane, m),
                        padded + s.padded_size(), padded);
        const T* row = padded + window.pad_h * s.padded_w + window.pad_w;
        T* to = pgx + plane * s.plane();
        for (std::int64_t y = 0; y < s.height; ++y, row += s.padded_w, to += s.width)
          std::copy(row, row + s.width, to);
      }
    }
    if (grad_weight.defined()) {
      T* pgw = grad_weight.data<T>();
      const std::int64_t weights = s.multiplier * s.taps(), span = s.product_span();
      ThreadBuffers<T> products(threads, weights * span);
      // A channel's weights on one thread, over the whole batch.
#pragma omp parallel for schedule(static) num_threads(threads)
      for (std::int64_t c = 0; c < s.channels; ++c) {
        T* padded = buffers.of_thread();
        T* sums = products.of_thread();
        std::fill(sums, sums + weights * span, T(0));
        for (std::int64_t n = 0; n < s.batch; ++n) {
          const std::int64_t plane = n * s.channels + c;
          pad_plane(s, px + plane * s.plane(), padded);
          for (std::int64_t m = 0; m < s.multiplier; ++m)
            add_products(s, padded, pg + s.output_of(plane, m), padded + s.padded_size(),
                         sums + m * s.taps() * span);
        }
        for (std::int64_t k = 0; k < weights; ++k)
          pgw[c * weights + k] = static_cast<T>(product_sum(s, sums + k * span));
      }
    }
  });
}

}  // namespace ds::cpu
