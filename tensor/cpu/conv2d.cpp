// Convolution image by image: each thread unfolds one image into its own column buffer, which
// is still in cache when the product reads it, instead of unfolding the whole batch to memory
// (75 MB per resnet20 layer at batch 128) and reading it back. Backward unfolds each image again
// for the weight gradient and folds each image's column gradient while it is in cache. Both take
// a large image a band of output rows at a time.
#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/gemm.hpp"
#include "tensor/cpu/im2col.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

struct ConvShape {
  std::int64_t batch, channels, out_channels, taps;  // taps = channels * kh * kw
  PlaneWindow plane;
  std::int64_t image_size() const { return channels * plane.plane_size(); }
};

ConvShape conv_shape(const Tensor& x, const Tensor& weight, const Window& w) {
  const auto& s = x.shape();
  return {s[0], s[1], weight.shape()[0], weight.shape()[1], PlaneWindow(s[2], s[3], w)};
}

// A 1x1 window with stride 1 and no padding: an image [C, H, W] is its own columns [C, H * W].
bool is_pointwise(const Window& w) {
  return w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1 && w.pad_h == 0 &&
         w.pad_w == 0;
}

// Working per image pays when every thread gets images; a smaller batch of images that need no
// bands takes the composed default, whose products are split over the threads instead.
bool per_image_pays(const ConvShape& s) { return s.batch >= omp_get_max_threads(); }

// An image whose columns take more than this is unfolded a band of output rows at a time, so
// that a large image needs no more memory than a small one: a 512x512 map with 64 channels has
// 600 MB of columns, a 2048x2048 one 9.7 GB (per thread). Below it, as resnet20's and ImageNet
// resnet18's images are, a band is the whole image.
constexpr std::int64_t kBandColumnsBytes = std::int64_t{8} << 20;

// An image's bands: rows each (the last up to count - 1 rows shorter), count of them.
struct Bands {
  std::int64_t rows, count;
};
Bands bands_of(const ConvShape& s, DType dtype) {
  const std::int64_t out_h = s.plane.out_h();
  const std::int64_t row_bytes = std::max<std::int64_t>(
      1, s.taps * s.plane.out_w() * static_cast<std::int64_t>(dtype_size(dtype)));
  const std::int64_t most_rows = std::clamp<std::int64_t>(kBandColumnsBytes / row_bytes, 1, out_h);
  const std::int64_t count = (out_h + most_rows - 1) / most_rows;
  return {(out_h + count - 1) / count, count};
}

// Band b of an image's output rows.
PlaneWindow::Span band_of(const ConvShape& s, std::int64_t rows, std::int64_t b) {
  return {b * rows, std::min(b * rows + rows, s.plane.out_h())};
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

// One column buffer per thread, allocated before the parallel region (an allocation failure
// inside it could not be reported).
template <typename T>
struct ThreadBuffers {
  ThreadBuffers(int threads, std::int64_t size)
      : size(size), memory(std::make_unique_for_overwrite<T[]>(threads * size)) {}
  T* of_thread() { return memory.get() + omp_get_thread_num() * size; }
  std::int64_t size;
  std::unique_ptr<T[]> memory;
};

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
    ThreadBuffers<T> buffers(threads, pointwise ? 0 : s.taps * rows * out_w);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::int64_t item = 0; item < s.batch * bands; ++item) {
      const std::int64_t n = item / bands;
      const PlaneWindow::Span band = band_of(s, rows, item % bands);
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
  // The bands of an image overlap in the input rows their gradients fold into, so a thread
  // takes whole images, their bands one after the other. With fewer images than threads the
  // others idle: bounded memory over speed (at batch 1 on a 256x256 64-channel map this was
  // 1.2x slower than the composed default, which unfolds the whole image).
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
    // One buffer per thread serves a band's columns and then its column gradient, so that it is
    // still in cache when they are read (590 KB for resnet20's first layers, up to 8 MB).
    ThreadBuffers<T> buffers(threads, pointwise ? 0 : K * rows * out_w);
    // Each thread sums its images' weight gradients into its own partial; the partials are
    // added in thread order afterwards, so the result does not depend on scheduling.
    std::vector<T> partials(need_weight ? threads * O * K : 0, T(0));
    // With several times more taps than out channels the partial is summed transposed, [K, O]:
    // Eigen then packs the image's O x L output gradient as its left operand rather than the
    // K x L columns, whose row-major packing was 6% of a resnet20 step: this product takes
    // 25-30% less time for 16 -> 16 channel 3x3 layers at 32x32, a resnet20 step about 7%.
    const bool transposed_partial = K >= 4 * O;
#pragma omp parallel num_threads(threads)
    {
      T* partial = partials.data() + (need_weight ? omp_get_thread_num() * O * K : 0);
#pragma omp for schedule(static)
      for (std::int64_t n = 0; n < s.batch; ++n) {
        const T* image = px + n * s.image_size();
        T* grad_image = need_x ? pgx + n * s.image_size() : nullptr;
        if (need_x && !pointwise) std::fill(grad_image, grad_image + s.image_size(), T(0));
        for (std::int64_t b = 0; b < bands; ++b) {
          const PlaneWindow::Span band = band_of(s, rows, b);
          const std::int64_t Lb = (band.end - band.begin) * out_w;
          const T* g = pg + n * O * L + band.begin * out_w;  // O x Lb, rows L apart
          T* buffer = buffers.of_thread();
          if (need_weight) {
            const auto [columns, stride] = band_columns(image, s, pointwise, band, buffer);
            if (transposed_partial)  // partial^T += columns (K x Lb) * g^T (Lb x O)
              gemm_serial<T>(K, O, Lb, {columns, stride, false}, {g, L, true}, partial, O, true);
            else  // partial += g (O x Lb) * columns^T (Lb x K)
              gemm_serial<T>(O, K, Lb, {g, L, false}, {columns, stride, true}, partial, K, true);
          }
          if (need_x) {
            // grad columns (K x Lb) = weight^T (K x O) * g (O x Lb), folded back into the image
            if (pointwise) {
              gemm_serial<T>(K, Lb, O, {pw, K, true}, {g, L, false},
                             grad_image + band.begin * out_w, L, false);
            } else {
              gemm_serial<T>(K, Lb, O, {pw, K, true}, {g, L, false}, buffer, Lb, false);
              fold_band_consuming(buffer, s, band, grad_image);
            }
          }
        }
      }
    }
    if (need_weight) {
      T* sum = partials.data();
      for (int t = 1; t < threads; ++t) {
        const T* partial = partials.data() + t * O * K;
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
