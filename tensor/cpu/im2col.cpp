// im2col / col2im: the sliding-window rearrangement behind convolution and pooling. Each
// (image, channel) pair is independent, so the work is split over the cores by that pair.
#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/strided_loop.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

struct Geometry {
  std::int64_t batch, channels, height, width, out_h, out_w;
};

Geometry geometry_of(const Tensor& image, const Window& w) {
  const auto& s = image.shape();
  return {s[0], s[1], s[2], s[3], w.out_h(s[2]), w.out_w(s[3])};
}

// Calls fn(column_row, image_offset, column_offset) for every kernel tap of every (n, c):
// the column row holds, for each output position, the input pixel under that tap.
template <typename Fn>
void for_each_tap(const Geometry& g, const Window& w, Fn fn) {
  const std::int64_t planes = g.batch * g.channels;
  const std::int64_t taps = w.kernel_h * w.kernel_w;
  const std::int64_t positions = g.out_h * g.out_w;
  const bool parallel = planes > 1 && planes * taps * positions >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const std::int64_t n = plane / g.channels, c = plane % g.channels;
    for (std::int64_t tap = 0; tap < taps; ++tap) {
      const std::int64_t row = c * taps + tap;
      fn(tap, plane * g.height * g.width, (n * g.channels * taps + row) * positions);
    }
  }
}

}  // namespace

void CpuBackend::im2col(const Tensor& in, const Window& w, double pad_value, const Tensor& out) {
  const Geometry g = geometry_of(in, w);
  dispatch_floating(in.dtype(), "im2col", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    const T pad = static_cast<T>(pad_value);
    for_each_tap(g, w, [&](std::int64_t tap, std::int64_t image, std::int64_t column) {
      const std::int64_t ki = tap / w.kernel_w, kj = tap % w.kernel_w;
      for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
        T* out_row = dst + column + oh * g.out_w;
        if (ih < 0 || ih >= g.height) {
          std::fill(out_row, out_row + g.out_w, pad);
          continue;
        }
        const T* in_row = src + image + ih * g.width;
        for (std::int64_t ow = 0; ow < g.out_w; ++ow) {
          const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
          out_row[ow] = iw >= 0 && iw < g.width ? in_row[iw] : pad;
        }
      }
    });
  });
}

void CpuBackend::col2im(const Tensor& cols, const Window& w, const Tensor& out) {
  const Geometry g = geometry_of(out, w);
  dispatch_floating(cols.dtype(), "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = cols.data<T>();
    T* dst = out.data<T>();
    // Taps of one plane run on one thread, so the accumulation into the plane is race-free.
    for_each_tap(g, w, [&](std::int64_t tap, std::int64_t image, std::int64_t column) {
      const std::int64_t ki = tap / w.kernel_w, kj = tap % w.kernel_w;
      for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
        if (ih < 0 || ih >= g.height) continue;
        const T* col_row = src + column + oh * g.out_w;
        T* image_row = dst + image + ih * g.width;
        for (std::int64_t ow = 0; ow < g.out_w; ++ow) {
          const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
          if (iw >= 0 && iw < g.width) image_row[iw] += col_row[ow];
        }
      }
    });
  });
}

}  // namespace ds::cpu
