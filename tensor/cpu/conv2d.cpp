// Convolution image by image (a large image a band of output rows at a time), each thread
// working on its own images with its scratch in cache, in one of two forms. Windows run as
// direct convolutions (direct_conv.hpp; the input gradient at stride 1 only), where that pays.
// Other windows unfold each image into a column buffer, which is still in cache when the
// product reads it, instead of unfolding the whole batch to memory (75 MB per resnet20 layer at
// batch 128) and reading it back; backward unfolds each image again for the weight gradient and
// folds each image's column gradient while it is in cache.
#include <omp.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/direct_conv.hpp"
#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/im2col.hpp"
#include "tensor/cpu/thread_buffers.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

struct ConvShape {
  std::int64_t batch, channels, out_channels, taps;  // taps = channels * kh * kw
  std::int64_t height, width;
  PlaneWindow plane;
  std::int64_t image_size() const { return channels * plane.plane_size(); }
};

ConvShape conv_shape(const Tensor& x, const Tensor& weight, const Window& w) {
  const auto& s = x.shape();
  return {s[0], s[1], weight.shape()[0], weight.shape()[1], s[2], s[3], PlaneWindow(s[2], s[3], w)};
}

// A 1x1 window with stride 1 and no padding: an image [C, H, W] is its own columns [C, H * W].
bool is_pointwise(const Window& w) {
  return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 && w.pad_h == 0 &&
         w.pad_w == 0;
}

// Working per image pays when every thread gets images; a smaller batch of images that need no
// bands takes the composed default, whose products are split over the threads instead.
bool per_image_pays(const ConvShape& s) { return s.batch >= omp_get_max_threads(); }

// An image whose scratch (its columns, or a direct convolution's padded copy and products)
// takes more than this is worked a band of output rows at a time, so that a large image needs
// no more memory than a small one: a 512x512 map with 64 channels has 600 MB of columns, a
// 2048x2048 one 9.7 GB (per thread). Below it, as resnet20's and ImageNet resnet18's images
// are, a band is the whole image.
constexpr std::int64_t kBandScratchBytes = std::int64_t{8} << 20;
// Small images are stacked for a direct convolution up to this many positions: enough to pay
// for the per-call work (a weight gradient's sums are added up across SIMD lanes once per
// call), few enough that a weight gradient block's rows (up to 8 of them) stay in L1.
// Resnet20's 8x8 maps go 12 to a call, its 16x16 ones 3, its 32x32 ones one. And few enough
// that the padded copy of every channel stays within kGroupBytes, in L2: each block of output
// channels reads all of it again (16 7x7 maps of 512 channels, 2.3 MB, took twice the time of
// the lowered product; one or two to a call, 1.1x).
constexpr std::int64_t kGroupPositions = 1024;
constexpr std::int64_t kGroupBytes = std::int64_t{512} << 10;

// An image's bands: rows each (the last up to count - 1 rows shorter), count of them, of
// out_rows output rows that need row_bytes of scratch each; at least least_count of them.
struct Bands {
  std::int64_t rows, count;
};
Bands bands_for(std::int64_t out_rows, std::int64_t row_bytes, std::int64_t least_count = 1) {
  if (out_rows <= 0) return {1, 0};
  const std::int64_t most_rows = std::clamp<std::int64_t>(
      kBandScratchBytes / std::max<std::int64_t>(1, row_bytes), 1, out_rows);
  const std::int64_t count =
      std::min(std::max((out_rows + most_rows - 1) / most_rows, least_count), out_rows);
  return {(out_rows + count - 1) / count, count};
}
Bands bands_of(const ConvShape& s, DType dtype) {
  return bands_for(s.plane.out_h(),
                   s.taps * s.plane.out_w() * static_cast<std::int64_t>(dtype_size(dtype)));
}
// (With a copy per column, in whole registers: DirectConv::band_step.)
template <typename T>
Bands bands_of(const DirectConv<T>& conv, std::int64_t least_count = 1) {
  const std::int64_t rows = std::max<std::int64_t>(1, conv.out_h());
  Bands bands = bands_for(conv.out_h(),
                          conv.buffer_size(rows, 1) / rows * static_cast<std::int64_t>(sizeof(T)),
                          least_count);
  const std::int64_t step = conv.band_step();
  if (step > 1 && bands.count > 0) {
    bands.rows = (bands.rows + step - 1) / step * step;
    bands.count = (conv.out_h() + bands.rows - 1) / bands.rows;
  }
  return bands;
}
// The batch in groups of images for the calls of a direct convolution (see DirectConv::run):
// single images if it takes bands, else at most as many as fill kGroupPositions and
// kGroupBytes. The groups differ by one image at most and, unless there are fewer images than
// threads, their count is a multiple of the thread count, so that every thread gets the same
// work.
struct Groups {
  std::int64_t batch, count;
  std::int64_t first(std::int64_t g) const { return g * batch / count; }
  std::int64_t size(std::int64_t g) const { return first(g + 1) - first(g); }
  std::int64_t largest() const { return (batch + count - 1) / count; }
};
template <typename T>
std::int64_t most_images(const DirectConv<T>& conv, const Bands& bands) {
  if (bands.count > 1) return 1;
  const std::int64_t copy_bytes = std::max<std::int64_t>(
      1, conv.planes() * conv.stacked_positions() * static_cast<std::int64_t>(sizeof(T)));
  return std::max<std::int64_t>(
      1, std::min(kGroupPositions / conv.stacked_positions(), kGroupBytes / copy_bytes));
}
Groups groups_of(std::int64_t batch, std::int64_t most_images) {
  const std::int64_t threads = omp_get_max_threads();
  const std::int64_t count =
      ((batch + most_images - 1) / most_images + threads - 1) / threads * threads;
  return {batch, std::min(count, batch)};
}

// A direct convolution where the window allows one and it pays: it computes
// computed_positions() values per image (the padding between rows included unless its rows are
// whole registers or it takes a copy per column) where the lowered product computes one per
// output position (an image's input gradient takes about as many products as its forward), but
// faster per value, with neither unfolding nor packing. Up to kMostDirectWork times as many
// values pay (AVX-512 Xeon): resnet20's 3x3 layers (1.06-1.27 with the padding, before the
// copies per column) ran faster, and the input gradient of MNIST's second 5x5 layer (without
// padding on 12x12 maps: 2.25) 1.3x slower.
// The weight gradient's lowered product is Eigen's best shape (a long inner dimension) while
// the direct one adds up its SIMD lanes per call: it pays up to kMostDirectWeightWork (resnet20's
// 16x16 maps, 1.13; its 8x8 ones, 1.27, ran 5% slower). Beyond kLongProducts taps (the forward
// product's inner dimension; the gradients' are the output channels and the positions, which
// the layers measured had as many or more of) the lowered products run near Eigen's peak and
// only kMostDirectWorkOnLongProducts pays: ImageNet resnet18's 256-channel 14x14 maps ran even
// at 1.15, its 512-channel 7x7 ones (1.31) 1.35x slower, its 128-channel 28x28 ones (1.07) 1.2x
// faster.
constexpr double kMostDirectWork = 1.4;
constexpr double kMostDirectWeightWork = 1.2;
constexpr std::int64_t kLongProducts = 1152;
constexpr double kMostDirectWorkOnLongProducts = 1.1;
constexpr std::int64_t kFewestGradientChannels = 4;
enum class DirectUse { forward, weight_gradient, input_gradient };
template <typename T>
std::optional<DirectConv<T>> direct_conv_for(DirectUse use, const ConvShape& s, const Window& w,
                                             const T* weight) {
  if (s.batch == 0 || is_pointwise(w) ||
      !(use == DirectUse::input_gradient ? direct_conv_applies_to_input_gradient(w)
                                         : direct_conv_applies(w)))
    return std::nullopt;
  const std::int64_t C = s.channels, H = s.height, W = s.width, O = s.out_channels;
  // The sizes first: laying out the weights of a large layer costs more than a small call. The
  // input gradient's convolution has its own (with a copy per column, its rows are as long as
  // the input's) and as many taps: its values against the forward's output positions are its
  // work against the lowered product's (a 5x5 window without padding on 12x12 maps: 2.25).
  const DirectConv<T> sizes = use == DirectUse::input_gradient
                                  ? DirectConv<T>::input_gradient_sizes(C, H, W, w, O)
                                  : DirectConv<T>::weight_gradient(C, H, W, w, O);
  const double most_work = s.taps > kLongProducts              ? kMostDirectWorkOnLongProducts
                           : use == DirectUse::weight_gradient ? kMostDirectWeightWork
                                                               : kMostDirectWork;
  if (static_cast<double>(sizes.computed_positions()) >
      most_work * static_cast<double>(s.plane.positions()))
    return std::nullopt;
  // A copy per column computes no padding, but its weight gradient's per-call lane sums still
  // ran slower than the lowered product (resnet20's 8x8 maps: 3.9 against 3.0 ms).
  if (use == DirectUse::weight_gradient && sizes.band_step() > 1) return std::nullopt;
  // The blocks take kBlockChannels output channels at a time: the input gradient of an image of
  // a few channels (grey or RGB) ran at a third of a block's speed, slower than the lowered
  // product (MNIST's first layer: 1.6-2.2 against 0.7-0.9 ms).
  if (use == DirectUse::input_gradient && C < kFewestGradientChannels) return std::nullopt;
  switch (use) {
    case DirectUse::forward:
      return DirectConv<T>::forward(C, H, W, w, O, weight);
    case DirectUse::input_gradient:
      return DirectConv<T>::input_gradient(C, H, W, w, O, weight);
    case DirectUse::weight_gradient:
      break;
  }
  return sizes;
}

// Band b of out_rows output rows.
PlaneWindow::Span band_of(std::int64_t out_rows, std::int64_t rows, std::int64_t b) {
  return {b * rows, std::min(b * rows + rows, out_rows)};
}

// The columns [taps, band positions] of a band of an image's output rows, `stride` apart: a
// column block of a pointwise image, else unfolded into the buffer.
template <typename T>
struct BandColumns {
  const T* data;
  std::int64_t stride;
};
template <typename T>
BandColumns<T> band_columns(const T* image, const ConvShape& s, bool pointwise,
                            PlaneWindow::Span band, T* buffer) {
  const std::int64_t positions = (band.end - band.begin) * s.plane.out_w();
  if (pointwise) return {image + band.begin * s.plane.out_w(), s.plane.positions()};
  const std::int64_t channel_rows = s.plane.kernel_taps() * positions;
  for (std::int64_t c = 0; c < s.channels; ++c)
    s.plane.unfold(image + c * s.plane.plane_size(), T(0), buffer + c * channel_rows, positions,
                   band);
  return {buffer, positions};
}

// Adds a band's column gradient into the image's gradient, overwriting the padding entries of
// the columns (see PlaneWindow::fold_consuming).
template <typename T>
void fold_band_consuming(T* columns, const ConvShape& s, PlaneWindow::Span band, T* image) {
  const std::int64_t channel_rows =
      s.plane.kernel_taps() * (band.end - band.begin) * s.plane.out_w();
  for (std::int64_t c = 0; c < s.channels; ++c)
    s.plane.fold_consuming(columns + c * channel_rows, image + c * s.plane.plane_size(), band);
}

}  // namespace

void CpuBackend::conv2d(const Tensor& x, const Tensor& weight, const Window& w, const Tensor& out) {
  const ConvShape s = conv_shape(x, weight, w);
  const auto [rows, bands] = bands_of(s, x.dtype());
  // Bands (of one image or not) or whole images for every thread; else the composed default,
  // whose products are split over the threads.
  if (bands == 1 && !per_image_pays(s)) return Backend::conv2d(x, weight, w, out);
  const bool pointwise = is_pointwise(w);
  const int threads = omp_get_max_threads();
  dispatch_floating(x.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    T* po = out.data<T>();
    const std::int64_t L = s.plane.positions(), out_w = s.plane.out_w();
    if (const auto direct_conv = direct_conv_for(DirectUse::forward, s, w, pw)) {
      const DirectConv<T>& conv = *direct_conv;
      // With fewer images than threads, each image in as many bands as that takes.
      const Bands direct = bands_of(conv, (threads + s.batch - 1) / s.batch);
      const Groups groups = groups_of(s.batch, most_images(conv, direct));
      ThreadBuffers<T> buffers(threads, conv.buffer_size(direct.rows, groups.largest()));
#pragma omp parallel for schedule(static) num_threads(threads)
      for (std::int64_t item = 0; item < groups.count * direct.count; ++item) {
        const std::int64_t g = item / direct.count, first = groups.first(g);
        conv.run(px + first * s.image_size(), groups.size(g), po + first * s.out_channels * L,
                 band_of(conv.out_h(), direct.rows, item % direct.count), buffers.of_thread());
      }
      return;
    }
    ThreadBuffers<T> buffers(threads, pointwise ? 0 : s.taps * rows * out_w);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t item = 0; item < s.batch * bands; ++item) {
      const std::int64_t n = item / bands;
      const PlaneWindow::Span band = band_of(s.plane.out_h(), rows, item % bands);
      const BandColumns<T> columns =
          band_columns(px + n * s.image_size(), s, pointwise, band, buffers.of_thread());
      gemm_serial<T>(s.out_channels, (band.end - band.begin) * out_w, s.taps, {pw, s.taps, false},
                     {columns.data, columns.stride, false},
                     po + n * s.out_channels * L + band.begin * out_w, L, false);
    }
  });
}

void CpuBackend::conv2d_backward(const Tensor& x, const Tensor& weight, const Tensor& grad_out,
                                 const Window& w, const Tensor& grad_x, const Tensor& grad_weight) {
  const ConvShape s = conv_shape(x, weight, w);
  const auto [rows, bands] = bands_of(s, x.dtype());
  // The bands of an image overlap in the input rows their column gradients fold into, and all
  // add to one weight gradient, so a thread takes whole images (or groups of them), their bands
  // one after the other. With fewer images than threads the others idle: bounded memory over
  // speed (at batch 1 on a 256x256 64-channel map this was 1.2x slower than the composed
  // default, which unfolds the whole image).
  if (bands == 1 && !per_image_pays(s))
    return Backend::conv2d_backward(x, weight, grad_out, w, grad_x, grad_weight);
  const bool pointwise = is_pointwise(w);
  const bool need_x = grad_x.defined(), need_weight = grad_weight.defined();
  const int threads = omp_get_max_threads();
  dispatch_floating(x.dtype(), "conv2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pg = grad_out.data<T>();
    T* pgx = need_x ? grad_x.data<T>() : nullptr;
    const std::int64_t L = s.plane.positions(), O = s.out_channels, K = s.taps;
    const std::int64_t out_w = s.plane.out_w();
    // Direct convolutions where they apply and pay: the weight gradient from the forward's
    // layout of the image, the input gradient as a convolution of the output gradient. Each
    // takes its own bands.
    const std::optional<DirectConv<T>> weight_conv =
        need_weight ? direct_conv_for(DirectUse::weight_gradient, s, w, pw) : std::nullopt;
    const std::optional<DirectConv<T>> gradient_conv =
        need_x ? direct_conv_for(DirectUse::input_gradient, s, w, pw) : std::nullopt;
    const Bands weight_bands = weight_conv ? bands_of(*weight_conv) : Bands{0, 0};
    const Bands gradient_bands = gradient_conv ? bands_of(*gradient_conv) : Bands{0, 0};
    const bool columns_for_weight = need_weight && !weight_conv;
    const bool columns_for_x = need_x && !gradient_conv;
    // One buffer per thread serves each step in turn: a band's columns and then its column
    // gradient, so that it is still in cache when they are read (590 KB for resnet20's first
    // layers, up to 8 MB), or a direct convolution's band.
    std::int64_t buffer_size =
        !pointwise && (columns_for_weight || columns_for_x) ? K * rows * out_w : 0;
    // Groups of small images for the direct convolutions.
    std::int64_t most = std::max<std::int64_t>(1, s.batch);
    if (weight_conv) most = std::min(most, most_images(*weight_conv, weight_bands));
    if (gradient_conv) most = std::min(most, most_images(*gradient_conv, gradient_bands));
    const Groups groups = groups_of(s.batch, most);
    if (weight_conv)
      buffer_size =
          std::max(buffer_size, weight_conv->buffer_size(weight_bands.rows, groups.largest()));
    if (gradient_conv)
      buffer_size =
          std::max(buffer_size, gradient_conv->buffer_size(gradient_bands.rows, groups.largest()));
    ThreadBuffers<T> buffers(threads, buffer_size);
    // Each thread sums its images' weight gradients into its own partial; the partials are
    // added in thread order afterwards, so the result does not depend on scheduling. (As
    // ThreadBuffers, from the tensor allocator: fresh pages at every call were half a resnet20
    // step's page faults.)
    ThreadBuffers<T> partials(threads, need_weight ? O * K : 0);
    std::fill_n(partials.of(0), threads * partials.size, T(0));
    // With several times more taps than out channels the partial is summed transposed, [K, O]:
    // Eigen then packs the image's O x L output gradient as its left operand rather than the
    // K x L columns, whose row-major packing was 6% of a resnet20 step: this product takes
    // 25-30% less time for 16 -> 16 channel 3x3 layers at 32x32, a resnet20 step about 7%.
    const bool transposed_partial = columns_for_weight && K >= 4 * O;
    // Image n's other gradients: its input gradient, and its weight gradient where no direct
    // convolution takes it, through its columns.
    const auto backward_image = [&](std::int64_t n, T* partial, T* buffer) {
      if (!columns_for_weight && !columns_for_x) return;
      const T* image = px + n * s.image_size();
      const T* grad_image_out = pg + n * O * L;
      T* grad_image = need_x ? pgx + n * s.image_size() : nullptr;
      if (columns_for_x && !pointwise) std::fill(grad_image, grad_image + s.image_size(), T(0));
      for (std::int64_t b = 0; b < bands; ++b) {
        const PlaneWindow::Span band = band_of(s.plane.out_h(), rows, b);
        const std::int64_t Lb = (band.end - band.begin) * out_w;
        const T* g = grad_image_out + band.begin * out_w;  // O x Lb, rows L apart
        if (columns_for_weight) {
          const auto [columns, stride] = band_columns(image, s, pointwise, band, buffer);
          if (transposed_partial)  // partial^T += columns (K x Lb) * g^T (Lb x O)
            gemm_serial<T>(K, O, Lb, {columns, stride, false}, {g, L, true}, partial, O, true);
          else  // partial += g (O x Lb) * columns^T (Lb x K)
            gemm_serial<T>(O, K, Lb, {g, L, false}, {columns, stride, true}, partial, K, true);
        }
        if (columns_for_x) {
          // grad columns (K x Lb) = weight^T (K x O) * g (O x Lb), folded back into the image
          if (pointwise) {
            gemm_serial<T>(K, Lb, O, {pw, K, true}, {g, L, false}, grad_image + band.begin * out_w,
                           L, false);
          } else {
            gemm_serial<T>(K, Lb, O, {pw, K, true}, {g, L, false}, buffer, Lb, false);
            fold_band_consuming(buffer, s, band, grad_image);
          }
        }
      }
    };
#pragma omp parallel num_threads(threads)
    {
      T* partial = partials.of_thread();
#pragma omp for schedule(static)
      for (std::int64_t g = 0; g < groups.count; ++g) {
        const std::int64_t first = groups.first(g), count = groups.size(g);
        T* buffer = buffers.of_thread();
        for (std::int64_t b = 0; b < weight_bands.count; ++b)
          weight_conv->add_weight_gradient(px + first * s.image_size(), pg + first * O * L, count,
                                           band_of(weight_conv->out_h(), weight_bands.rows, b),
                                           partial, buffer);
        for (std::int64_t b = 0; b < gradient_bands.count; ++b)
          gradient_conv->run(pg + first * O * L, count, pgx + first * s.image_size(),
                             band_of(gradient_conv->out_h(), gradient_bands.rows, b), buffer);
        for (std::int64_t n = first; n < first + count; ++n) backward_image(n, partial, buffer);
      }
    }
    if (need_weight) {
      T* sum = partials.of(0);
      for (int t = 1; t < threads; ++t) {
        const T* partial = partials.of(t);
#pragma omp simd
        for (std::int64_t i = 0; i < O * K; ++i) sum[i] += partial[i];
      }
      T* result = grad_weight.data<T>();
      if (!transposed_partial)
        std::copy(sum, sum + O * K, result);
      else
        for (std::int64_t o = 0; o < O; ++o)
          for (std::int64_t k = 0; k < K; ++k) result[o * K + k] = sum[k * O + o];
    }
  });
}

}  // namespace ds::cpu
