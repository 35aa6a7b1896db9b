#pragma once
// Convolution straight from a zero-padded copy of the image. With the padded rows laid end to
// end, the input a kernel tap reads for a run of output positions is one contiguous run of the
// copy, at a fixed offset per tap; so the products read the image itself, with neither unfolded
// columns nor GEMM packing (two copies of nine times the image for a 3x3 window). With a stride
// the copy is split into phases (every stride-th row and column from each offset), in which a
// tap's run is contiguous again. Where an output row is a whole number of registers, each
// register's positions lie in one row and the products go straight to the output; elsewhere the
// positions that fall in the padding between rows are computed too, in a buffer, and dropped as
// the kept ones are copied out, unless an image's output is a whole number of registers and
// the padding would cost more than a fifth: then the copy holds, for each column of the window,
// the input that column reads for every output position, rows as long as the output's end to
// end (narrow and unpadded maps: on AVX-512 8x8, or 24x24 from 28x28), and each image's output
// is computed in place with no padding at all, at the price of a copy per column.
// The same routine computes the input gradient, a stride-1 convolution of the output gradient
// with the transposed, flipped weights; the weight gradient sums the output gradient times the
// same runs of the copy.
#include <cstdint>
#include <utility>
#include <vector>

#include "tensor/backend.hpp"
#include "tensor/cpu/im2col.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

// Whether a convolution, or also its input gradient, can run this way: the convolution and its
// weight gradient at any stride, the input gradient at stride 1 with no more padding than the
// window reaches (its padding is that reach minus the forward's).
bool direct_conv_applies(const Window& w);
bool direct_conv_applies_to_input_gradient(const Window& w);

template <typename T>
class DirectConv {
 public:
  // image [channels, height, width] -> [out_channels, out_h, out_w] with weight
  // [out_channels, channels, kh, kw].
  static DirectConv forward(std::int64_t channels, std::int64_t height, std::int64_t width,
                            const Window& window, std::int64_t out_channels, const T* weight);
  // The same convolution without weights, for add_weight_gradient() and the sizes only.
  static DirectConv weight_gradient(std::int64_t channels, std::int64_t height, std::int64_t width,
                                    const Window& window, std::int64_t out_channels);
  // The same convolution's output gradient [out_channels, out_h, out_w] -> input gradient
  // [channels, height, width].
  static DirectConv input_gradient(std::int64_t channels, std::int64_t height, std::int64_t width,
                                   const Window& window, std::int64_t out_channels,
                                   const T* weight);
  // That convolution without weights, for its sizes.
  static DirectConv input_gradient_sizes(std::int64_t channels, std::int64_t height,
                                         std::int64_t width, const Window& window,
                                         std::int64_t out_channels);

  std::int64_t channels() const { return channels_; }
  // The planes the copy of an image holds: per channel, one per phase the taps read (one at
  // stride 1), or per row phase and column of the window.
  std::int64_t planes() const { return channels_ * static_cast<std::int64_t>(phases_.size()); }
  std::int64_t out_h() const { return out_h_; }
  std::int64_t out_w() const { return out_w_; }
  // A band passed to run() and add_weight_gradient() must cover a multiple of this many output
  // rows (out_h() is one): with a copy per column, a band is whole registers.
  std::int64_t band_step() const { return band_step_; }
  // run() and add_weight_gradient() take a band of output rows of one image, or several whole
  // images: these are stacked into one tall image with zero rows between them, so that the
  // per-call costs and the positions computed past each plane's end are shared.

  // The positions an image takes in the stack, those in the padding between rows included.
  std::int64_t stacked_positions() const { return slot_rows_ * padded_w_; }
  // The values run() computes per image: its output positions alone where the rows are written
  // in place, else its stacked positions.
  std::int64_t computed_positions() const {
    return in_place_rows_ ? out_h_ * out_w_ : stacked_positions();
  }
  // Scratch values they need for `images` images of `rows` output rows.
  std::int64_t buffer_size(std::int64_t rows, std::int64_t images) const;
  // Writes the output rows in `band` of `count` consecutive images to out [count, out_channels,
  // out_h, out_w].
  void run(const T* images, std::int64_t count, T* out, PlaneWindow::Span band, T* buffer) const;
  // Adds to partial [out_channels, channels * kh * kw] the weight gradient from the output rows
  // in `band` of `count` consecutive images [channels, height, width] with their output
  // gradients grad_outs [count, out_channels, out_h, out_w]: per weight, the sum over those
  // positions of the output gradient times the input its tap reads.
  void add_weight_gradient(const T* images, const T* grad_outs, std::int64_t count,
                           PlaneWindow::Span band, T* partial, T* buffer) const;

 private:
  DirectConv(std::int64_t channels, std::int64_t height, std::int64_t width, const Window& window,
             std::int64_t out_channels);
  // Lays out the weights for run(); weight_at(o, c, ki, kj) is the weight from input channel c
  // to output channel o at tap (ki, kj).
  template <typename WeightAt>
  void pack(WeightAt weight_at);

  // The stacked images' layout: output rows, the input rows they read, their positions rounded
  // up to whole registers, and each channel's plane (room for the last register's furthest
  // tap, whole registers).
  struct Layout {
    std::int64_t rows, in_rows, positions, plane;
  };
  Layout layout(std::int64_t images, PlaneWindow::Span band) const;
  // Lays out the input rows the taps read, each channel's phases' planes lay.plane apart.
  void pad_images(const T* images, std::int64_t count, PlaneWindow::Span band, const Layout& lay,
                  T* padded) const;
  // The positions run() and add_weight_gradient() take (defined in direct_conv.cpp).
  struct Walk;
  Walk walk(std::int64_t count, PlaneWindow::Span band, const Layout& lay) const;
  // Where each tap reads, from the output position, in a copy laid out as `lay`.
  std::vector<std::int64_t> tap_reads(const Layout& lay) const;
  // row(r, image, y) for each stacked output row r that is an output row y of an image.
  template <typename Row>
  void for_each_output_row(PlaneWindow::Span band, const Layout& lay, Row row) const;

  std::int64_t channels_, height_, width_, out_channels_, out_h_, out_w_;
  Window window_;
  // With a stride, the padded input in phases: phase (py, px) holds the padded input's rows
  // py, py + stride_h, ... and in them the columns px, px + stride_w, ...; output (i, j) reads
  // tap (ki, kj) in phase (ki * dilation_h % stride_h, kj * dilation_w % stride_w) at
  // (i + ki * dilation_h / stride_h, j + kj * dilation_w / stride_w). The copy holds the phases
  // some tap reads, in order of first use. With a copy per column (column_copies_) the second
  // member is the window's column kj instead: plane (py, kj) holds, in each of the phase's rows,
  // the input that column kj reads for output columns 0, 1, ... (zeros outside the input).
  using Phase = std::pair<std::int64_t, std::int64_t>;
  std::vector<Phase> phases_;
  bool column_copies_;
  std::int64_t band_step_;
  // A line of a phase's copy: the phase's elements of one input row (at stride 1 the row
  // itself) after as many zeros as the phase has padding elements before the input, and zeros
  // after them, at least enough that the reads past an output row land in the next line's
  // leading zeros (Axis::line in direct_conv.cpp); with a copy per column, out_w_ values.
  std::int64_t padded_w_;
  // The lines an image takes in the stack, the same way: its phase rows and zero lines that
  // serve as the bottom padding of one image and the top padding of the next.
  std::int64_t slot_rows_;
  // Whether each output row is a whole number of registers, or with a copy per column each
  // image's output: the blocks then compute the output's positions alone, in place (Walk), not
  // the padding between rows too, in a buffer.
  bool in_place_rows_;
  // Where each tap reads, from the output position, in its phase's copy; which phase; and the
  // most lines and elements a tap reads past the output position.
  std::vector<std::int64_t> tap_offsets_, tap_phases_;
  std::int64_t row_reach_ = 0, reach_ = 0;
  // Per block of output channels: its first channel, width and weights, [channels][taps][width]
  // (none for weight_gradient()). The weights come from the tensor allocator, as a convolution
  // packs them at every call: fresh pages each time were a fifth of a resnet20 step's page faults.
  struct ChannelBlock {
    std::int64_t first, width, weights;
  };
  std::vector<ChannelBlock> blocks_;
  Tensor weights_;
};

}  // namespace ds::cpu
