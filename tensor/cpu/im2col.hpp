#pragma once
// The sliding-window rearrangement of one (image, channel) plane: im2col/col2im run it over
// every plane of a batch, the convolution over the planes of one image at a time.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tensor/backend.hpp"

namespace ds::cpu {

// A window over planes of one size. The rows of a plane are kernel_h * kernel_w rows (one per
// kernel tap) of out_h * out_w values: the input pixel under that tap for each output position.
class PlaneWindow {
 public:
  PlaneWindow(std::int64_t height, std::int64_t width, const Window& window);

  std::int64_t plane_size() const { return height_ * width_; }
  std::int64_t out_h() const { return out_h_; }
  std::int64_t out_w() const { return out_w_; }
  std::int64_t positions() const { return out_h_ * out_w_; }
  std::int64_t kernel_taps() const { return window_.kernel_h * window_.kernel_w; }
  std::int64_t rows_size() const { return kernel_taps() * positions(); }
  // Stride 1 and as many output as input columns (a "same" convolution): the rows of a tap
  // that lie inside the plane read one contiguous run of it.
  bool rows_are_runs() const;

  // A range of output positions [begin, end) along one axis.
  struct Span {
    std::int64_t begin, end;
  };
  // Where kernel tap (ki, kj) reads: the plane offset that output (0, 0) reads (possibly outside
  // the plane), and the output rows and columns whose input lies inside the plane (elsewhere the
  // tap reads padding).
  struct Reach {
    std::int64_t input;
    Span rows, cols;
  };
  Reach reach(std::int64_t ki, std::int64_t kj) const;

  // plane -> rows, for the output rows in `band`: (band.end - band.begin) * out_w positions per
  // tap (a large image is unfolded a band at a time); taps that fall in the padding read `pad`.
  // Tap t's positions start at rows + t * tap_stride: the band's positions pack them, a larger
  // stride leaves room beside them (the shift kernel puts several images' columns side by side).
  template <typename T>
  void unfold(const T* plane, T pad, T* rows, std::int64_t tap_stride, Span band) const;
  template <typename T>
  void unfold(const T* plane, T pad, T* rows) const {
    unfold(plane, pad, rows, positions(), {0, out_h_});
  }
  // Adds the rows of the output rows in `band` (packed: (band.end - band.begin) * out_w positions
  // per tap) back into the plane, each value onto the pixel it was taken from.
  template <typename T>
  void fold(const T* rows, T* plane, Span band) const;
  template <typename T>
  void fold(const T* rows, T* plane) const {
    fold(rows, plane, {0, out_h_});
  }
  // The same sum, faster, for rows the caller no longer needs: their padding entries are
  // overwritten.
  template <typename T>
  void fold_consuming(T* rows, T* plane, Span band) const;

 private:
  // One kernel tap: where its values start in the rows, and its reach.
  struct Tap : Reach {
    std::int64_t rows_offset;
  };
  template <typename Fn>
  void for_each_tap(std::int64_t tap_stride, Fn fn) const;

  // The rows of a tap in a band: [begin, end) of them read inside the plane.
  static Span inside_band(const Tap& tap, Span band) {
    const std::int64_t begin = std::clamp(tap.rows.begin, band.begin, band.end);
    return {begin, std::clamp(tap.rows.end, begin, band.end)};
  }

  std::int64_t height_, width_, out_h_, out_w_;
  Window window_;
  // Per kernel row / column: two integer divisions each, so computed once, not per plane.
  std::vector<Span> row_spans_, col_spans_;
};

}  // namespace ds::cpu
