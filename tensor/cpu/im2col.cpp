// im2col / col2im: the sliding-window rearrangement behind convolution and pooling. Each
// (image, channel) plane is independent, so the work is split over the cores by plane.
#include "tensor/cpu/im2col.hpp"

#include <algorithm>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/strided_loop.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

PlaneWindow::PlaneWindow(std::int64_t height, std::int64_t width, const Window& window)
    : height_(height),
      width_(width),
      out_h_(window.out_h(height)),
      out_w_(window.out_w(width)),
      window_(window) {
  for (std::int64_t kj = 0; kj < window.kernel_w; ++kj) {
    const std::int64_t first = kj * window.dilation_w - window.pad_w;  // input column of ow = 0
    const std::int64_t stride = window.stride_w;
    const std::int64_t begin = std::min(first >= 0 ? 0 : (-first + stride - 1) / stride, out_w_);
    const std::int64_t end = first >= width ? 0 : (width - 1 - first) / stride + 1;
    spans_.push_back({begin, std::clamp(end, begin, out_w_)});
  }
}

bool PlaneWindow::rows_are_runs() const {
  return window_.stride_h == 1 && window_.stride_w == 1 && out_w_ == width_;
}

// Calls fn(tap_rows, ki, first, span) for every kernel tap: tap_rows is the offset of its
// out_h * out_w values, first the input column of output column 0.
template <typename Fn>
void PlaneWindow::for_each_tap(Fn fn) const {
  for (std::int64_t ki = 0; ki < window_.kernel_h; ++ki)
    for (std::int64_t kj = 0; kj < window_.kernel_w; ++kj)
      fn((ki * window_.kernel_w + kj) * out_h_ * out_w_, ki,
         kj * window_.dilation_w - window_.pad_w, spans_[kj]);
}

// Calls fn(row, ih, first, span) for every output row oh of every tap: row is the offset of
// the tap's values for oh, ih the input row it reads.
template <typename Fn>
void PlaneWindow::for_each_tap_row(Fn fn) const {
  for_each_tap([&](std::int64_t tap_rows, std::int64_t ki, std::int64_t first, Span span) {
    for (std::int64_t oh = 0; oh < out_h_; ++oh)
      fn(tap_rows + oh * out_w_, oh * window_.stride_h - window_.pad_h + ki * window_.dilation_h,
         first, span);
  });
}

// When rows_are_runs(): calls fn(tap_rows, oh0, oh1, input, span) for every tap whose rows
// [oh0, oh1) read inside the plane, input being the plane offset that output (oh0, 0) reads.
// Values [span.begin, (oh1 - oh0) * out_w - (out_w - span.end)) of those rows and of the plane
// from `input` on then correspond one to one, except the padding entries inside, and every
// plane offset in that range lies inside rows oh0..oh1 of the plane.
template <typename Fn>
void PlaneWindow::for_each_tap_run(Fn fn) const {
  for_each_tap([&](std::int64_t tap_rows, std::int64_t ki, std::int64_t first, Span span) {
    const std::int64_t shift = ki * window_.dilation_h - window_.pad_h;  // ih = oh + shift
    const std::int64_t oh0 = std::clamp<std::int64_t>(-shift, 0, out_h_);
    const std::int64_t oh1 = std::clamp<std::int64_t>(height_ - shift, oh0, out_h_);
    fn(tap_rows, oh0, oh1, (oh0 + shift) * width_ + first, span);
  });
}

template <typename T>
void PlaneWindow::unfold(const T* plane, T pad, T* rows) const {
  if (!rows_are_runs()) {
    for_each_tap_row([&](std::int64_t row, std::int64_t ih, std::int64_t first, Span span) {
      T* out = rows + row;
      if (ih < 0 || ih >= height_) {
        std::fill(out, out + out_w_, pad);
        return;
      }
      const T* in = plane + ih * width_ + first;
      std::fill(out, out + span.begin, pad);
      for (std::int64_t ow = span.begin; ow < span.end; ++ow) out[ow] = in[ow * window_.stride_w];
      std::fill(out + span.end, out + out_w_, pad);
    });
    return;
  }
  // One copy per tap, then the padding at the ends of each row: far cheaper than a copy per row
  // of 8 to 32 values.
  for_each_tap_run([&](std::int64_t tap_rows, std::int64_t oh0, std::int64_t oh1,
                       std::int64_t input, Span span) {
    T* tap = rows + tap_rows;
    std::fill(tap, tap + oh0 * out_w_, pad);
    std::fill(tap + oh1 * out_w_, tap + out_h_ * out_w_, pad);
    if (span.begin == span.end) {  // the tap reads only padding
      std::fill(tap + oh0 * out_w_, tap + oh1 * out_w_, pad);
      return;
    }
    const T* in = plane + input;
    T* out = tap + oh0 * out_w_;
    const std::int64_t count = (oh1 - oh0) * out_w_;
    std::copy(in + span.begin, in + count - (out_w_ - span.end), out + span.begin);
    for (std::int64_t oh = oh0; oh < oh1; ++oh) {
      T* row = tap + oh * out_w_;
      std::fill(row, row + span.begin, pad);
      std::fill(row + span.end, row + out_w_, pad);
    }
  });
}

template <typename T>
void PlaneWindow::fold(const T* rows, T* plane) const {
  for_each_tap_row([&](std::int64_t row, std::int64_t ih, std::int64_t first, Span span) {
    if (ih < 0 || ih >= height_) return;
    const T* in = rows + row;
    T* out = plane + ih * width_ + first;
    if (window_.stride_w == 1) {
#pragma omp simd
      for (std::int64_t ow = span.begin; ow < span.end; ++ow) out[ow] += in[ow];
    } else {
      for (std::int64_t ow = span.begin; ow < span.end; ++ow) out[ow * window_.stride_w] += in[ow];
    }
  });
}

template <typename T>
void PlaneWindow::fold_consuming(T* rows, T* plane) const {
  if (!rows_are_runs()) return fold(rows, plane);
  // Zeroing the padding entries inside a tap's run lets one loop add the whole run: they land
  // on pixels of the neighbouring rows, unchanged by adding zero.
  for_each_tap_run([&](std::int64_t tap_rows, std::int64_t oh0, std::int64_t oh1,
                       std::int64_t input, Span span) {
    if (oh0 == oh1 || span.begin == span.end) return;
    T* in = rows + tap_rows + oh0 * out_w_;
    for (std::int64_t oh = oh0; oh < oh1; ++oh) {
      T* row = rows + tap_rows + oh * out_w_;
      std::fill(row, row + span.begin, T(0));
      std::fill(row + span.end, row + out_w_, T(0));
    }
    T* out = plane + input;
    const std::int64_t end = (oh1 - oh0) * out_w_ - (out_w_ - span.end);
#pragma omp simd
    for (std::int64_t i = span.begin; i < end; ++i) out[i] += in[i];
  });
}

template void PlaneWindow::unfold<float>(const float*, float, float*) const;
template void PlaneWindow::unfold<double>(const double*, double, double*) const;
template void PlaneWindow::fold<float>(const float*, float*) const;
template void PlaneWindow::fold<double>(const double*, double*) const;
template void PlaneWindow::fold_consuming<float>(float*, float*) const;
template void PlaneWindow::fold_consuming<double>(double*, double*) const;

namespace {

// Calls fn(plane offset, rows offset) for every (image, channel) plane of an [N, C, H, W] batch.
template <typename Fn>
void for_each_plane(const Shape& batch, const PlaneWindow& pw, Fn fn) {
  const std::int64_t planes = batch[0] * batch[1];
  const bool parallel = planes > 1 && planes * pw.rows_size() >= kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t p = 0; p < planes; ++p) fn(p * pw.plane_size(), p * pw.rows_size());
}

}  // namespace

void CpuBackend::im2col(const Tensor& in, const Window& w, double pad_value, const Tensor& out) {
  const auto& s = in.shape();
  const PlaneWindow pw(s[2], s[3], w);
  dispatch_floating(in.dtype(), "im2col", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = in.data<T>();
    T* dst = out.data<T>();
    for_each_plane(s, pw, [&](std::int64_t plane, std::int64_t rows) {
      pw.unfold(src + plane, static_cast<T>(pad_value), dst + rows);
    });
  });
}

void CpuBackend::col2im(const Tensor& cols, const Window& w, const Tensor& out) {
  const auto& s = out.shape();
  const PlaneWindow pw(s[2], s[3], w);
  dispatch_floating(cols.dtype(), "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = cols.data<T>();
    T* dst = out.data<T>();
    // One plane per iteration, so the accumulation into a plane is race-free.
    for_each_plane(
        s, pw, [&](std::int64_t plane, std::int64_t rows) { pw.fold(src + rows, dst + plane); });
  });
}

}  // namespace ds::cpu
