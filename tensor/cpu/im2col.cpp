// im2col / col2im: the sliding-window rearrangement behind convolution and pooling. Each
// (image, channel) plane is independent, so the work is split over the cores by plane.
#include "tensor/cpu/im2col.hpp"

#include <algorithm>
#include <type_traits>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/strided_loop.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

// The outputs o in [0, count) whose input o * stride + first lies inside [0, extent).
PlaneWindow::Span inside(std::int64_t first, std::int64_t stride, std::int64_t extent,
                         std::int64_t count) {
  const std::int64_t begin = std::min(first >= 0 ? 0 : (-first + stride - 1) / stride, count);
  const std::int64_t end = first >= extent ? 0 : (extent - 1 - first) / stride + 1;
  return {begin, std::clamp(end, begin, count)};
}

}  // namespace

PlaneWindow::PlaneWindow(std::int64_t height, std::int64_t width, const Window& window)
    : height_(height),
      width_(width),
      out_h_(window.out_h(height)),
      out_w_(window.out_w(width)),
      window_(window) {
  for (std::int64_t ki = 0; ki < window.kernel_h; ++ki)
    row_spans_.push_back(
        inside(ki * window.dilation_h - window.pad_h, window.stride_h, height, out_h_));
  for (std::int64_t kj = 0; kj < window.kernel_w; ++kj)
    col_spans_.push_back(
        inside(kj * window.dilation_w - window.pad_w, window.stride_w, width, out_w_));
}

bool PlaneWindow::rows_are_runs() const {
  return window_.stride_h == 1 && window_.stride_w == 1 && out_w_ == width_;
}

PlaneWindow::Reach PlaneWindow::reach(std::int64_t ki, std::int64_t kj) const {
  return {
      (ki * window_.dilation_h - window_.pad_h) * width_ + kj * window_.dilation_w - window_.pad_w,
      row_spans_[ki], col_spans_[kj]};
}

template <typename Fn>
void PlaneWindow::for_each_tap(std::int64_t tap_stride, Fn fn) const {
  for (std::int64_t ki = 0; ki < window_.kernel_h; ++ki)
    for (std::int64_t kj = 0; kj < window_.kernel_w; ++kj)
      fn(Tap{reach(ki, kj), (ki * window_.kernel_w + kj) * tap_stride});
}

namespace {

// Calls rows(width) with the row width as a compile-time constant for the widths of small
// planes (a valid 5x5 convolution of MNIST's 12x12 maps has rows of 8), so that a row becomes a
// few vector moves; at run-time lengths, the loop set-up per row of 8 to 32 values cost several
// times the copy itself.
template <typename Rows>
void with_row_width(std::int64_t width, Rows rows) {
  switch (width) {
    case 8:
      return rows(std::integral_constant<std::int64_t, 8>{});
    case 16:
      return rows(std::integral_constant<std::int64_t, 16>{});
    case 24:
      return rows(std::integral_constant<std::int64_t, 24>{});
    case 32:
      return rows(std::integral_constant<std::int64_t, 32>{});
    default:
      return rows(width);
  }
}

// std::fill as a loop the compiler vectorises: GCC 12 at -O2 left std::fill's loops scalar here,
// one 4-byte store per padding value (its cost model declines a loop that needs an epilogue).
template <typename T>
void fill_with(T* begin, T* end, T value) {
#pragma omp simd
  for (T* at = begin; at < end; ++at) *at = value;
}

// Sets the columns outside [begin, end) of the rows of out_w values in [rows, rows + count) to
// value, a column at a time down the rows: a small kernel's tap pads one or two values per row,
// for which a fill per row cost more than the rest of the row's work.
template <typename T>
void fill_outside_columns(T* rows, std::int64_t count, std::int64_t out_w, std::int64_t begin,
                          std::int64_t end, T value) {
  for (std::int64_t c = 0; c < begin; ++c)
    for (std::int64_t at = c; at < count; at += out_w) rows[at] = value;
  for (std::int64_t c = end; c < out_w; ++c)
    for (std::int64_t at = c; at < count; at += out_w) rows[at] = value;
}

// Row by row, for windows whose rows are not runs: out[r][begin + j] = in[r * row_step + j *
// col_step], padding elsewhere.
template <typename T>
void copy_rows(const T* in, std::int64_t row_step, std::int64_t col_step, T* out, std::int64_t rows,
               std::int64_t out_w, std::int64_t begin, std::int64_t end, T pad) {
  fill_outside_columns(out, rows * out_w, out_w, begin, end, pad);
  out += begin;
  if (col_step != 1) {  // offsets from the first row: a pointer past the last row is not formed
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < end - begin; ++j)
        out[r * out_w + j] = in[r * row_step + j * col_step];
    return;
  }
  with_row_width(end - begin, [=](auto length) {
    for (std::int64_t r = 0; r < rows; ++r)
#pragma omp simd
      for (std::int64_t j = 0; j < length; ++j) out[r * out_w + j] = in[r * row_step + j];
  });
}

}  // namespace

// Offsets rather than pointers: a tap's offset of output (0, 0) may lie outside the plane.
template <typename T>
void PlaneWindow::unfold(const T* plane, T pad, T* rows, std::int64_t tap_stride, Span band) const {
  const std::int64_t row_step = window_.stride_h * width_, col_step = window_.stride_w;
  const bool runs = rows_are_runs();
  // pad by value: captured by reference it is reloaded after every store.
  for_each_tap(tap_stride, [&, pad](const Tap& tap) {
    const auto [begin, end] = inside_band(tap, band);
    T* const tap_rows = rows + tap.rows_offset;
    fill_with(tap_rows, tap_rows + (begin - band.begin) * out_w_, pad);
    fill_with(tap_rows + (end - band.begin) * out_w_, tap_rows + (band.end - band.begin) * out_w_,
              pad);
    const std::int64_t in = tap.input + begin * row_step;
    T* out = tap_rows + (begin - band.begin) * out_w_;
    const std::int64_t count = (end - begin) * out_w_;
    if (count == 0) return;
    if (tap.cols.begin == tap.cols.end) {  // the tap reads only padding
      fill_with(out, out + count, pad);
      return;
    }
    if (runs) {
      // One copy of the whole run, then the padding at the row ends: far cheaper than a copy
      // per row of 8 to 32 values. Every value read lies in the input rows the tap reads.
      std::copy(plane + (in + tap.cols.begin), plane + (in + count - (out_w_ - tap.cols.end)),
                out + tap.cols.begin);
      fill_outside_columns(out, count, out_w_, tap.cols.begin, tap.cols.end, pad);
      return;
    }
    copy_rows(plane + (in + tap.cols.begin * col_step), row_step, col_step, out, end - begin,
              out_w_, tap.cols.begin, tap.cols.end, pad);
  });
}

template <typename T>
void PlaneWindow::fold(const T* rows, T* plane, Span band) const {
  const std::int64_t row_step = window_.stride_h * width_, col_step = window_.stride_w;
  const std::int64_t out_w = out_w_;
  for_each_tap((band.end - band.begin) * out_w, [&](const Tap& tap) {
    const auto [begin, end] = inside_band(tap, band);
    const std::int64_t count = end - begin;
    if (count == 0 || tap.cols.begin == tap.cols.end) return;
    const T* in = rows + tap.rows_offset + (begin - band.begin) * out_w + tap.cols.begin;
    T* out = plane + (tap.input + begin * row_step + tap.cols.begin * col_step);
    if (col_step != 1) {
      for (std::int64_t r = 0; r < count; ++r)
        for (std::int64_t ow = 0; ow < tap.cols.end - tap.cols.begin; ++ow)
          out[r * row_step + ow * col_step] += in[r * out_w + ow];
      return;
    }
    with_row_width(tap.cols.end - tap.cols.begin, [=](auto length) {
      for (std::int64_t r = 0; r < count; ++r)
#pragma omp simd
        for (std::int64_t ow = 0; ow < length; ++ow) out[r * row_step + ow] += in[r * out_w + ow];
    });
  });
}

template <typename T>
void PlaneWindow::fold_consuming(T* rows, T* plane, Span band) const {
  if (!rows_are_runs()) return fold(rows, plane, band);
  // Zeroing the padding entries inside a tap's run lets one loop add the whole run: they land
  // on pixels of the neighbouring rows, unchanged by adding zero.
  for_each_tap((band.end - band.begin) * out_w_, [&](const Tap& tap) {
    const auto [begin, end] = inside_band(tap, band);
    if (begin == end || tap.cols.begin == tap.cols.end) return;
    T* in = rows + tap.rows_offset + (begin - band.begin) * out_w_;
    const std::int64_t count = (end - begin) * out_w_;
    fill_outside_columns(in, count, out_w_, tap.cols.begin, tap.cols.end, T(0));
    T* out = plane + (tap.input + begin * width_ + tap.cols.begin);
    in += tap.cols.begin;
    const std::int64_t length = count - (out_w_ - tap.cols.end) - tap.cols.begin;
#pragma omp simd
    for (std::int64_t i = 0; i < length; ++i) out[i] += in[i];
  });
}

template void PlaneWindow::unfold<float>(const float*, float, float*, std::int64_t, Span) const;
template void PlaneWindow::unfold<double>(const double*, double, double*, std::int64_t, Span) const;
template void PlaneWindow::unfold<std::int32_t>(const std::int32_t*, std::int32_t, std::int32_t*,
                                                std::int64_t, Span) const;
template void PlaneWindow::fold<float>(const float*, float*, Span) const;
template void PlaneWindow::fold<double>(const double*, double*, Span) const;
template void PlaneWindow::fold_consuming<float>(float*, float*, Span) const;
template void PlaneWindow::fold_consuming<double>(double*, double*, Span) const;

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
