// im2col / col2im: the sliding-window rearrangement behind convolution and pooling. Each
// (image, channel) pair is independent, so the work is split over the cores by that pair.
#include <algorithm>

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

// The output columns ow in [begin, end) whose input column iw = ow * stride + first lies inside
// [0, width): outside that range a row reads padding.
struct Span {
  std::int64_t begin, end;
};

Span inside(std::int64_t first, std::int64_t stride, std::int64_t width, std::int64_t out_w) {
  const std::int64_t begin = first >= 0 ? 0 : (-first + stride - 1) / stride;
  const std::int64_t end = first >= width ? 0 : (width - 1 - first) / stride + 1;
  return {std::min(begin, out_w), std::clamp(end, std::min(begin, out_w), out_w)};
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
      const std::int64_t first = kj * w.dilation_w - w.pad_w;  // iw of ow = 0
      const Span span = inside(first, w.stride_w, g.width, g.out_w);
      for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
        T* out_row = dst + column + oh * g.out_w;
        if (ih < 0 || ih >= g.height) {
          std::fill(out_row, out_row + g.out_w, pad);
          continue;
        }
        const T* in_row = src + image + ih * g.width;
        std::fill(out_row, out_row + span.begin, pad);
        if (w.stride_w == 1) {
          std::copy(in_row + first + span.begin, in_row + first + span.end, out_row + span.begin);
        } else {
          for (std::int64_t ow = span.begin; ow < span.end; ++ow)
            out_row[ow] = in_row[first + ow * w.stride_w];
        }
        std::fill(out_row + span.end, out_row + g.out_w, pad);
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
      const std::int64_t first = kj * w.dilation_w - w.pad_w;
      const Span span = inside(first, w.stride_w, g.width, g.out_w);
      for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
        const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
        if (ih < 0 || ih >= g.height) continue;
        const T* col_row = src + column + oh * g.out_w;
        T* image_row = dst + image + ih * g.width;
        for (std::int64_t ow = span.begin; ow < span.end; ++ow)
          image_row[first + ow * w.stride_w] += col_row[ow];
      }
    });
  });
}

}  // namespace ds::cpu
