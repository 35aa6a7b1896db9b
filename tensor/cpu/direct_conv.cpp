#include "tensor/cpu/direct_conv.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <numeric>
#include <type_traits>
#include <utility>

#include "tensor/error.hpp"

namespace ds::cpu {

namespace {

// One SIMD register of T, in the widest form the build targets. Products use fused
// multiply-adds explicitly: at -std=c++20 GCC does not contract a * b + c on its own.
template <typename T>
struct Lanes;
// The first n <= count values of a register from memory (the others zero), and to memory, where
// the instruction set has no masked loads and stores.
template <typename V, typename T>
V load_values(const T* p, std::int64_t n) {
  V v{};
  for (std::int64_t i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
template <typename V, typename T>
void store_values(T* p, V v, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) p[i] = v[i];
}
// Without AVX: GCC's generic 16-byte vectors.
template <typename T, typename V>
struct GenericLanes {
  using Vector = V;
  static constexpr int count = sizeof(V) / sizeof(T);
  static Vector zero() { return Vector{}; }
  static Vector load(const T* p) {
    Vector v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, Vector v) { __builtin_memcpy(p, &v, sizeof v); }
  static Vector multiply_add(T a, Vector b, Vector c) { return a * b + c; }
  static Vector multiply_add(Vector a, Vector b, Vector c) { return a * b + c; }
  static T sum(Vector v) {
    T total = 0;
    for (int i = 0; i < count; ++i) total += v[i];
    return total;
  }
  static Vector load_first(const T* p, std::int64_t n) { return load_values<Vector>(p, n); }
  static void store_first(T* p, Vector v, std::int64_t n) { store_values(p, v, n); }
};
#if defined(__AVX2__)
float horizontal_sum(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  return _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)));
}
double horizontal_sum(__m256d v) {
  const __m128d x = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(x, _mm_unpackhi_pd(x, x)));
}
#endif
#if defined(__AVX512F__)
constexpr int kRegisters = 32;
template <>
struct Lanes<float> {
  using Vector = __m512;
  static constexpr int count = 16;
  static Vector zero() { return _mm512_setzero_ps(); }
  static Vector load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vector v) { _mm512_storeu_ps(p, v); }
  static Vector multiply_add(float a, Vector b, Vector c) {
    return _mm512_fmadd_ps(_mm512_set1_ps(a), b, c);
  }
  static Vector multiply_add(Vector a, Vector b, Vector c) { return _mm512_fmadd_ps(a, b, c); }
  // Through memory: GCC 12's intrinsics that move the upper half (and _mm512_reduce_add_ps)
  // trip its -Wuninitialized.
  static float sum(Vector v) {
    alignas(64) float halves[16];
    _mm512_store_ps(halves, v);
    return horizontal_sum(_mm256_add_ps(_mm256_load_ps(halves), _mm256_load_ps(halves + 8)));
  }
  static Vector load_first(const float* p, std::int64_t n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
  }
  static void store_first(float* p, Vector v, std::int64_t n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
};
template <>
struct Lanes<double> {
  using Vector = __m512d;
  static constexpr int count = 8;
  static Vector zero() { return _mm512_setzero_pd(); }
  static Vector load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, Vector v) { _mm512_storeu_pd(p, v); }
  static Vector multiply_add(double a, Vector b, Vector c) {
    return _mm512_fmadd_pd(_mm512_set1_pd(a), b, c);
  }
  static Vector multiply_add(Vector a, Vector b, Vector c) { return _mm512_fmadd_pd(a, b, c); }
  static double sum(Vector v) {
    alignas(64) double halves[8];
    _mm512_store_pd(halves, v);
    return horizontal_sum(_mm256_add_pd(_mm256_load_pd(halves), _mm256_load_pd(halves + 4)));
  }
  static Vector load_first(const double* p, std::int64_t n) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p);
  }
  static void store_first(double* p, Vector v, std::int64_t n) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v);
  }
};
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kRegisters = 16;
template <>
struct Lanes<float> {
  using Vector = __m256;
  static constexpr int count = 8;
  static Vector zero() { return _mm256_setzero_ps(); }
  static Vector load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vector v) { _mm256_storeu_ps(p, v); }
  static Vector multiply_add(float a, Vector b, Vector c) {
    return _mm256_fmadd_ps(_mm256_set1_ps(a), b, c);
  }
  static Vector multiply_add(Vector a, Vector b, Vector c) { return _mm256_fmadd_ps(a, b, c); }
  static float sum(Vector v) { return horizontal_sum(v); }
  static Vector load_first(const float* p, std::int64_t n) { return load_values<Vector>(p, n); }
  static void store_first(float* p, Vector v, std::int64_t n) { store_values(p, v, n); }
};
template <>
struct Lanes<double> {
  using Vector = __m256d;
  static constexpr int count = 4;
  static Vector zero() { return _mm256_setzero_pd(); }
  static Vector load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, Vector v) { _mm256_storeu_pd(p, v); }
  static Vector multiply_add(double a, Vector b, Vector c) {
    return _mm256_fmadd_pd(_mm256_set1_pd(a), b, c);
  }
  static Vector multiply_add(Vector a, Vector b, Vector c) { return _mm256_fmadd_pd(a, b, c); }
  static double sum(Vector v) { return horizontal_sum(v); }
  static Vector load_first(const double* p, std::int64_t n) { return load_values<Vector>(p, n); }
  static void store_first(double* p, Vector v, std::int64_t n) { store_values(p, v, n); }
};
#else
constexpr int kRegisters = 16;
typedef float FloatVector __attribute__((vector_size(16)));
typedef double DoubleVector __attribute__((vector_size(16)));
template <>
struct Lanes<float> : GenericLanes<float, FloatVector> {};
template <>
struct Lanes<double> : GenericLanes<double, DoubleVector> {};
#endif

// to[0, count) = from[0, count) for the short runs of a convolution's rows (a call to memmove
// per row of 8 to 32 values cost a sixth of a 16-channel 3x3 convolution).
template <typename T>
void copy_run(const T* from, std::int64_t count, T* to) {
  using L = Lanes<T>;
  std::int64_t i = 0;
  for (; i + L::count <= count; i += L::count) L::store(to + i, L::load(from + i));
  if (i < count) L::store_first(to + i, L::load_first(from + i, count - i), count - i);
}

// Lanes First, First + 2, ... of the registers a and b end to end.
template <int First, typename V, std::size_t... I>
V every_other_lane(V a, V b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, (First + 2 * I)...);
}

// to[k] = from[2 * k] for k in [0, count), the values of a stride-2 phase, a register of them from
// two of the input, reading within from[-before, readable) only: the last register, unless it is
// whole, from the value before its first on (its odd lanes then hold the values), or where that
// is not there either, as many values as it spans.
template <typename T>
void copy_every_other(const T* from, std::int64_t count, std::int64_t before, std::int64_t readable,
                      T* to) {
  using L = Lanes<T>;
  constexpr auto lanes = std::make_index_sequence<L::count>{};
  std::int64_t k = 0;
  for (; k + L::count <= count && 2 * (k + L::count) <= readable; k += L::count)
    L::store(to + k,
             every_other_lane<0>(L::load(from + 2 * k), L::load(from + 2 * k + L::count), lanes));
  if (k == count) return;
  const std::int64_t last = count - L::count;
  if (last >= 0 && 2 * last - 1 >= -before) {
    const T* at = from + 2 * last - 1;
    L::store(to + last, every_other_lane<1>(L::load(at), L::load(at + L::count), lanes));
    return;
  }
  // Fewer than a register's values left: the input they span, 2 * (count - k) - 1 values.
  const std::int64_t span = 2 * (count - k) - 1;
  const typename L::Vector low =
      L::load_first(from + 2 * k, std::min<std::int64_t>(span, L::count));
  const typename L::Vector high =
      span > L::count ? L::load_first(from + 2 * k + L::count, span - L::count) : L::zero();
  L::store_first(to + k, every_other_lane<0>(low, high, lanes), count - k);
}

// fn(std::integral_constant<int, n>{}) for n in [1, Most]: the block kernels' register counts
// are compile-time constants.
template <int Most, typename Fn>
void with_count(std::int64_t n, Fn fn) {
  if constexpr (Most > 1)
    if (n < Most) return with_count<Most - 1>(n, fn);
  fn(std::integral_constant<int, Most>{});
}

// A block of output: Vectors registers of consecutive positions for each of up to
// kBlockChannels output channels, the sums in registers (16 of AVX-512's 32, 8 of AVX2's 16)
// while the loop runs over every tap of a chunk of input channels. Two registers per channel, or
// one for a band's last positions, so that small planes (8x8) compute few positions past their
// end.
constexpr int kBlockChannels = kRegisters / 4;
// A chunk of input channels' weights for one block of output channels (see run()).
constexpr std::int64_t kChunkWeightsBytes = std::int64_t{32} << 10;

// One call of convolve_block: out[b * out_pitch + v * lanes + p] (+)= sum over input channels
// c and taps t of weights[(c * taps + t) * width + b] * in[c * plane + offsets[t] + v * in_step
// + p], for the block's Vectors registers v of positions p; += when accumulate (a later chunk of
// the input channels). in_step is a register's width where the input runs on, a padded row's
// where the second register starts the next output row (DirectConv::Walk).
template <typename T>
struct ConvolveBlock {
  const T* in;
  std::int64_t in_step, plane, channels;
  const std::int64_t* offsets;
  std::int64_t taps;
  const T* weights;
  T* out;
  std::int64_t out_pitch;
  bool accumulate;
};

template <typename T, int Vectors, int Width>
void convolve_block(const ConvolveBlock<T>& a) {
  // The loops over registers are unrolled by hand (GCC at -O2 keeps them, and with them the
  // sums in memory, not registers).
  using L = Lanes<T>;
  typename L::Vector sums[Width][Vectors];
#pragma GCC unroll 16
  for (int b = 0; b < Width; ++b)
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v)
      sums[b][v] = a.accumulate ? L::load(a.out + b * a.out_pitch + v * L::count) : L::zero();
  const T* in = a.in;
  const T* weights = a.weights;
  for (std::int64_t c = 0; c < a.channels; ++c, in += a.plane)
    for (std::int64_t t = 0; t < a.taps; ++t, weights += Width) {
      typename L::Vector x[Vectors];
#pragma GCC unroll 2
      for (int v = 0; v < Vectors; ++v) x[v] = L::load(in + a.offsets[t] + v * a.in_step);
#pragma GCC unroll 16
      for (int b = 0; b < Width; ++b)
#pragma GCC unroll 2
        for (int v = 0; v < Vectors; ++v)
          sums[b][v] = L::multiply_add(weights[b], x[v], sums[b][v]);
    }
#pragma GCC unroll 16
  for (int b = 0; b < Width; ++b)
#pragma GCC unroll 2
    for (int v = 0; v < Vectors; ++v) L::store(a.out + b * a.out_pitch + v * L::count, sums[b][v]);
}

// The weight gradient's block: sums over positions of Outs output gradient rows times Ins
// input windows, Outs x Ins registers of partial sums (16 of AVX-512's 32, 8 of AVX2's 16).
constexpr int kCorrelateOuts = kRegisters / 8;
constexpr int kCorrelateIns = 4;

}  // namespace

// The positions run() computes and add_weight_gradient() sums over, in stretches of `rows`
// rows of row_vectors registers each: a stretch's outputs lie one after the other from `out`
// (channel 0; channels out_pitch apart), its rows' inputs in_row apart from `in` in each padded
// plane. Where out_w_ is a whole number of registers, each image's output rows are a stretch
// and the blocks write the output (and read the output gradient) in place; with a copy per
// column likewise, each register a row of the walk. Otherwise the whole stack is one row, the
// positions in the padding between rows included, in a products buffer.
template <typename T>
struct DirectConv<T>::Walk {
  struct Stretch {
    std::int64_t in, out, rows;
  };
  std::vector<Stretch> stretches;
  std::int64_t row_vectors, in_row, out_pitch;

  // Where the input of register k of a stretch starts, from the stretch's.
  std::int64_t input_of(std::int64_t k) const {
    return k / row_vectors * in_row + k % row_vectors * Lanes<T>::count;
  }
};

template <typename T>
typename DirectConv<T>::Walk DirectConv<T>::walk(std::int64_t count, PlaneWindow::Span band,
                                                 const Layout& lay) const {
  constexpr std::int64_t lanes = Lanes<T>::count;
  if (!in_place_rows_) return {{{0, 0, 1}}, lay.positions / lanes, 0, lay.positions};
  const std::int64_t out_plane = out_h_ * out_w_;
  // With a copy per column an image's band is one run of registers, each a row of the walk.
  Walk w{{}, column_copies_ ? 1 : out_w_ / lanes, column_copies_ ? lanes : padded_w_, out_plane};
  const std::int64_t rows = band.end - band.begin;
  if (rows % band_step_ != 0)
    fail("direct convolution: a band of ", rows, " output rows, not a multiple of ", band_step_,
         " (whole registers)");
  for (std::int64_t image = 0; image < count; ++image)
    w.stretches.push_back({image * slot_rows_ * padded_w_,
                           image * out_channels_ * out_plane + band.begin * out_w_,
                           column_copies_ ? rows * out_w_ / lanes : rows});
  return w;
}

namespace {

// partial[o * k_stride + i] += sum over the walk's positions of grads[o * out_pitch + the
// position's output] * in[offsets[i] + its input].
template <typename T, int Outs, int Ins, typename Walk>
void correlate_block(const T* grads, const T* in, const std::int64_t* offsets, const Walk& walk,
                     T* partial, std::int64_t k_stride) {
  using L = Lanes<T>;
  typename L::Vector sums[Outs][Ins];
#pragma GCC unroll 8
  for (int o = 0; o < Outs; ++o)
#pragma GCC unroll 8
    for (int i = 0; i < Ins; ++i) sums[o][i] = L::zero();
  // From the end of one row's input to the start of the next.
  const std::int64_t row_gap = walk.in_row - walk.row_vectors * L::count;
  for (const auto& stretch : walk.stretches) {
    const T* windows[Ins];
#pragma GCC unroll 8
    for (int i = 0; i < Ins; ++i) windows[i] = in + stretch.in + offsets[i];
    const T* g = grads + stretch.out;
    const std::int64_t vectors = stretch.rows * walk.row_vectors;
    std::int64_t at = 0, column = 0;
    for (std::int64_t k = 0; k < vectors; ++k, g += L::count) {
      typename L::Vector x[Ins];
#pragma GCC unroll 8
      for (int i = 0; i < Ins; ++i) x[i] = L::load(windows[i] + at);
#pragma GCC unroll 8
      for (int o = 0; o < Outs; ++o) {
        const typename L::Vector gv = L::load(g + o * walk.out_pitch);
#pragma GCC unroll 8
        for (int i = 0; i < Ins; ++i) sums[o][i] = L::multiply_add(gv, x[i], sums[o][i]);
      }
      at += L::count;
      if (++column == walk.row_vectors) {
        column = 0;
        at += row_gap;
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < Outs; ++o)
#pragma GCC unroll 8
    for (int i = 0; i < Ins; ++i) partial[o * k_stride + i] += L::sum(sums[o][i]);
}

}  // namespace

bool direct_conv_applies(const Window& w) { return w.stride_h >= 1 && w.stride_w >= 1; }

bool direct_conv_applies_to_input_gradient(const Window& w) {
  return w.stride_h == 1 && w.stride_w == 1 && w.pad_h <= w.dilation_h * (w.kernel_h - 1) &&
         w.pad_w <= w.dilation_w * (w.kernel_w - 1);
}

namespace {

// One axis of the window. Output i's tap reads padded input i * stride + tap * dilation: in
// phase (tap * dilation) % stride of the padded input (its elements p, p + stride, ...), the
// element (tap * dilation) / stride past i. With stride 1 there is one phase, the input itself.
struct Axis {
  std::int64_t size, pad, stride, dilation, kernel, out;

  std::int64_t phase_of(std::int64_t tap) const { return tap * dilation % stride; }
  std::int64_t step_of(std::int64_t tap) const { return tap * dilation / stride; }
  // The first and one past the last element of phase p that lie in the input, not the padding.
  std::int64_t first_inside(std::int64_t p) const {
    return p >= pad ? 0 : (pad - p + stride - 1) / stride;
  }
  std::int64_t end_inside(std::int64_t p) const {
    return size + pad - p <= 0 ? 0 : (size + pad - p - 1) / stride + 1;
  }
  // The elements an output line takes in a phase's copy, the same for every phase: room for the
  // output line; for the reads past it, which must land in the leading zeros of the next line
  // (the padding before the input); and for the elements inside the input.
  std::int64_t line() const {
    std::int64_t length = out;
    for (std::int64_t tap = 0; tap < kernel; ++tap) {
      const std::int64_t p = phase_of(tap);
      length = std::max({length, out + step_of(tap) - first_inside(p), end_inside(p)});
    }
    return length;
  }
};

Axis rows_of(std::int64_t height, const Window& w) {
  return {height, w.pad_h, w.stride_h, w.dilation_h, w.kernel_h, w.out_h(height)};
}
Axis columns_of(std::int64_t width, const Window& w) {
  return {width, w.pad_w, w.stride_w, w.dilation_w, w.kernel_w, w.out_w(width)};
}

// A copy per column where the rows are not whole registers but an image's output is, and the
// padded lines would compute more than kMostLineWork times the output's positions (resnet20's
// 8x8 maps 1.27, MNIST's 24x24 from 28x28 1.36): below it (ImageNet resnet18's 56x56 maps,
// 1.05) one copy, kept in L2 for every block of output channels, costs less than a copy per
// column, and the weight gradient stays direct (its lane sums pay on long rows).
constexpr double kMostLineWork = 1.2;
template <typename T>
bool uses_column_copies(const Axis& rows, const Axis& columns) {
  constexpr std::int64_t lanes = Lanes<T>::count;
  const std::int64_t outputs = rows.out * columns.out;
  return columns.out > 0 && columns.out % lanes != 0 && outputs % lanes == 0 &&
         static_cast<double>(rows.line() * columns.line()) >
             kMostLineWork * static_cast<double>(outputs);
}

}  // namespace

template <typename T>
DirectConv<T>::DirectConv(std::int64_t channels, std::int64_t height, std::int64_t width,
                          const Window& window, std::int64_t out_channels)
    : channels_(channels),
      height_(height),
      width_(width),
      out_channels_(out_channels),
      out_h_(window.out_h(height)),
      out_w_(window.out_w(width)),
      window_(window) {
  constexpr std::int64_t lanes = Lanes<T>::count;
  const Axis rows = rows_of(height, window), columns = columns_of(width, window);
  column_copies_ = uses_column_copies<T>(rows, columns);
  band_step_ = column_copies_ ? lanes / std::gcd(out_w_, lanes) : 1;
  in_place_rows_ = column_copies_ || (out_w_ > 0 && out_w_ % lanes == 0);
  padded_w_ = column_copies_ ? out_w_ : columns.line();
  slot_rows_ = rows.line();
  for (std::int64_t ki = 0; ki < window.kernel_h; ++ki)
    for (std::int64_t kj = 0; kj < window.kernel_w; ++kj) {
      const Phase phase{rows.phase_of(ki), column_copies_ ? kj : columns.phase_of(kj)};
      const auto used = std::find(phases_.begin(), phases_.end(), phase);
      tap_phases_.push_back(used - phases_.begin());
      if (used == phases_.end()) phases_.push_back(phase);
      tap_offsets_.push_back(rows.step_of(ki) * padded_w_ +
                             (column_copies_ ? 0 : columns.step_of(kj)));
      row_reach_ = std::max(row_reach_, rows.step_of(ki));
      reach_ = std::max(reach_, tap_offsets_.back());
    }
}

template <typename T>
template <typename WeightAt>
void DirectConv<T>::pack(WeightAt weight_at) {
  weights_ = Tensor::empty({out_channels_ * channels_ * window_.kernel_h * window_.kernel_w},
                           dtype_of<T>());
  T* const packed = weights_.data<T>();
  std::int64_t next = 0;
  for (std::int64_t first = 0; first < out_channels_; first += kBlockChannels) {
    const std::int64_t block_width = std::min<std::int64_t>(kBlockChannels, out_channels_ - first);
    blocks_.push_back({first, block_width, next});
    for (std::int64_t c = 0; c < channels_; ++c)
      for (std::int64_t ki = 0; ki < window_.kernel_h; ++ki)
        for (std::int64_t kj = 0; kj < window_.kernel_w; ++kj)
          for (std::int64_t b = 0; b < block_width; ++b)
            packed[next++] = weight_at(first + b, c, ki, kj);
  }
}

template <typename T>
DirectConv<T> DirectConv<T>::forward(std::int64_t channels, std::int64_t height, std::int64_t width,
                                     const Window& window, std::int64_t out_channels,
                                     const T* weight) {
  DirectConv conv(channels, height, width, window, out_channels);
  const std::int64_t kh = window.kernel_h, kw = window.kernel_w;
  conv.pack([&](std::int64_t o, std::int64_t c, std::int64_t ki, std::int64_t kj) {
    return weight[((o * channels + c) * kh + ki) * kw + kj];
  });
  return conv;
}

template <typename T>
DirectConv<T> DirectConv<T>::weight_gradient(std::int64_t channels, std::int64_t height,
                                             std::int64_t width, const Window& window,
                                             std::int64_t out_channels) {
  return DirectConv(channels, height, width, window, out_channels);
}

template <typename T>
DirectConv<T> DirectConv<T>::input_gradient_sizes(std::int64_t channels, std::int64_t height,
                                                  std::int64_t width, const Window& window,
                                                  std::int64_t out_channels) {
  // Output position y reads input y + ki * d - pad, so input x receives from outputs
  // x - ki * d + pad = x + (kh - 1 - ki) * d - (reach - pad): a convolution of the output
  // gradient with padding reach - pad and the taps in reverse order.
  Window transposed = window;
  transposed.pad_h = window.dilation_h * (window.kernel_h - 1) - window.pad_h;
  transposed.pad_w = window.dilation_w * (window.kernel_w - 1) - window.pad_w;
  return DirectConv(out_channels, window.out_h(height), window.out_w(width), transposed, channels);
}

template <typename T>
DirectConv<T> DirectConv<T>::input_gradient(std::int64_t channels, std::int64_t height,
                                            std::int64_t width, const Window& window,
                                            std::int64_t out_channels, const T* weight) {
  const std::int64_t kh = window.kernel_h, kw = window.kernel_w;
  DirectConv conv = input_gradient_sizes(channels, height, width, window, out_channels);
  conv.pack([&](std::int64_t c, std::int64_t o, std::int64_t ki, std::int64_t kj) {
    return weight[((o * channels + c) * kh + kh - 1 - ki) * kw + kw - 1 - kj];
  });
  return conv;
}

template <typename T>
typename DirectConv<T>::Layout DirectConv<T>::layout(std::int64_t images,
                                                     PlaneWindow::Span band) const {
  constexpr std::int64_t lanes = Lanes<T>::count;
  const auto whole_registers = [](std::int64_t n) { return (n + lanes - 1) / lanes * lanes; };
  const std::int64_t rows = (images - 1) * slot_rows_ + band.end - band.begin;
  const std::int64_t positions = whole_registers(rows * padded_w_);
  const std::int64_t in_rows = rows + row_reach_;
  return {rows, in_rows, positions,
          whole_registers(std::max(positions + reach_, in_rows * padded_w_))};
}

template <typename T>
std::int64_t DirectConv<T>::buffer_size(std::int64_t rows, std::int64_t images) const {
  const Layout lay = layout(images, {0, rows});
  // (Products in a buffer only where the rows are not written in place.)
  return planes() * lay.plane + (in_place_rows_ ? 0 : out_channels_ * lay.positions);
}

template <typename T>
std::vector<std::int64_t> DirectConv<T>::tap_reads(const Layout& lay) const {
  std::vector<std::int64_t> reads(tap_offsets_.size());
  for (std::size_t t = 0; t < reads.size(); ++t)
    reads[t] = tap_phases_[t] * lay.plane + tap_offsets_[t];
  return reads;
}

template <typename T>
template <typename Row>
void DirectConv<T>::for_each_output_row(PlaneWindow::Span band, const Layout& lay, Row row) const {
  for (std::int64_t r = 0; r < lay.rows; ++r) {
    const std::int64_t image = r / slot_rows_, y = r % slot_rows_;
    if (y < band.end - band.begin) row(r, image, band.begin + y);
  }
}

template <typename T>
void DirectConv<T>::pad_images(const T* images, std::int64_t count, PlaneWindow::Span band,
                               const Layout& lay, T* padded) const {
  // Each channel's copy of each phase the taps read: line i of the stack, padded_w_ elements
  // from i * padded_w_, holds the phase's row band.begin + i of the stacked images (an image
  // every slot_rows_ rows), its elements inside the input after as many zeros as the phase has
  // before the input, zeros after them; then zeros up to the last tap's reach. Output (r, x)
  // sits at r * padded_w_ + x and a tap reads its phase's copy a row and column step further:
  // a column left or right of an image lands in the zeros between two lines, a row above or
  // below it in the zero lines between two images. With a copy per column, the line of column
  // kj is what that column reads for output columns 0 to out_w_ - 1: the padded input's columns
  // kj * dilation, kj * dilation + stride, ..., the lines end to end.
  const Axis columns = columns_of(width_, window_);
  for (std::int64_t c = 0; c < channels_; ++c)
    for (std::size_t p = 0; p < phases_.size(); ++p) {
      const auto [row_phase, column] = phases_[p];
      // The padded input's first column the plane's lines take, every stride-th one on.
      const std::int64_t start = column_copies_ ? column * window_.dilation_w : column;
      const std::int64_t first = columns.first_inside(start);
      const std::int64_t inside = columns.end_inside(start);
      const std::int64_t end = std::max(first, column_copies_ ? std::min(out_w_, inside) : inside);
      const std::int64_t first_x = first * window_.stride_w + start - window_.pad_w;
      T* const begin = padded + (c * static_cast<std::int64_t>(phases_.size()) + p) * lay.plane;
      // Zeros first, in one pass: per line, two short fills around the values cost more (on 8x8
      // maps, more than the values).
      std::fill(begin, begin + lay.plane, T(0));
      if (first == end) continue;
      // Line i is the phase's row `row` of the stack's image `image`.
      std::int64_t image = band.begin / slot_rows_, row = band.begin % slot_rows_;
      T* line = begin + first;
      for (std::int64_t i = 0; i < lay.in_rows; ++i, line += padded_w_) {
        const std::int64_t y = row * window_.stride_h + row_phase - window_.pad_h;
        if (image < count && y >= 0 && y < height_) {
          const T* from = images + ((image * channels_ + c) * height_ + y) * width_ + first_x;
          const std::int64_t values = end - first;
          if (window_.stride_w == 1)
            copy_run(from, values, line);
          else if (window_.stride_w == 2)
            copy_every_other(from, values, first_x, width_ - first_x, line);
          else
            for (std::int64_t n = 0; n < values; ++n) line[n] = from[n * window_.stride_w];
        }
        if (++row == slot_rows_) row = 0, ++image;
      }
    }
}

template <typename T>
void DirectConv<T>::run(const T* images, std::int64_t count, T* out, PlaneWindow::Span band,
                        T* buffer) const {
  const Layout lay = layout(count, band);
  pad_images(images, count, band, lay, buffer);
  const Walk walk = this->walk(count, band, lay);
  T* const products = in_place_rows_ ? out : buffer + planes() * lay.plane;
  const std::int64_t taps = static_cast<std::int64_t>(tap_offsets_.size());
  const std::vector<std::int64_t> reads = tap_reads(lay);
  const std::int64_t channel_planes = static_cast<std::int64_t>(phases_.size()) * lay.plane;
  constexpr std::int64_t lanes = Lanes<T>::count;
  // The input channels in chunks whose weights stay in L1 (with many channels the blocks
  // would otherwise read them from L2 at every position).
  const std::int64_t chunk = std::max<std::int64_t>(
      1, kChunkWeightsBytes / (taps * kBlockChannels * static_cast<std::int64_t>(sizeof(T))));
  // (At least one chunk: without input channels the products are zeros.)
  const std::int64_t chunks = std::max<std::int64_t>(1, (channels_ + chunk - 1) / chunk);
  const T* const packed = weights_.data<T>();
  for (std::int64_t c = 0; c < chunks * chunk; c += chunk)
    for (const ChannelBlock& block : blocks_)
      for (const auto& stretch : walk.stretches) {
        ConvolveBlock<T> call{nullptr,
                              lanes,
                              channel_planes,
                              std::min(chunk, channels_ - c),
                              reads.data(),
                              taps,
                              packed + block.weights + c * taps * block.width,
                              nullptr,
                              walk.out_pitch,
                              c > 0};
        const T* const in = buffer + c * channel_planes + stretch.in;
        T* const stretch_out = products + block.first * walk.out_pitch + stretch.out;
        const std::int64_t vectors = stretch.rows * walk.row_vectors;
        std::int64_t k = 0;
        with_count<kBlockChannels>(block.width, [&](auto width) {
          for (; k + 2 <= vectors; k += 2) {
            const std::int64_t at = walk.input_of(k);
            call.in = in + at;
            call.in_step = walk.input_of(k + 1) - at;
            call.out = stretch_out + k * lanes;
            convolve_block<T, 2, width>(call);
          }
          if (k < vectors) {
            call.in = in + walk.input_of(k);
            call.out = stretch_out + k * lanes;
            convolve_block<T, 1, width>(call);
          }
        });
      }
  if (in_place_rows_) return;
  const std::int64_t out_plane = out_h_ * out_w_;
  for_each_output_row(band, lay, [&](std::int64_t r, std::int64_t image, std::int64_t y) {
    for (std::int64_t o = 0; o < out_channels_; ++o)
      copy_run(products + o * lay.positions + r * padded_w_, out_w_,
               out + (image * out_channels_ + o) * out_plane + y * out_w_);
  });
}

template <typename T>
void DirectConv<T>::add_weight_gradient(const T* images, const T* grad_outs, std::int64_t count,
                                        PlaneWindow::Span band, T* partial, T* buffer) const {
  const Layout lay = layout(count, band);
  pad_images(images, count, band, lay, buffer);
  const Walk walk = this->walk(count, band, lay);
  const T* grads = grad_outs;
  if (!in_place_rows_) {
    // The output gradients in the products' layout, [out_channels][positions], zero wherever no
    // output is kept: one sum over the positions then takes every kept position of every image.
    T* const laid_out = buffer + planes() * lay.plane;
    std::fill(laid_out, laid_out + out_channels_ * lay.positions, T(0));
    const std::int64_t out_plane = out_h_ * out_w_;
    for_each_output_row(band, lay, [&](std::int64_t r, std::int64_t image, std::int64_t y) {
      for (std::int64_t o = 0; o < out_channels_; ++o)
        copy_run(grad_outs + (image * out_channels_ + o) * out_plane + y * out_w_, out_w_,
                 laid_out + o * lay.positions + r * padded_w_);
    });
    grads = laid_out;
  }
  // Weight k = c * taps + t reads the input at k_offsets[k] from the output position.
  const std::int64_t taps = static_cast<std::int64_t>(tap_offsets_.size());
  const std::int64_t weights = channels_ * taps;
  const std::vector<std::int64_t> reads = tap_reads(lay);
  const std::int64_t channel_planes = static_cast<std::int64_t>(phases_.size()) * lay.plane;
  std::vector<std::int64_t> k_offsets(weights);
  for (std::int64_t k = 0; k < weights; ++k)
    k_offsets[k] = k / taps * channel_planes + reads[k % taps];
  for (std::int64_t o = 0; o < out_channels_; o += kCorrelateOuts)
    for (std::int64_t k = 0; k < weights; k += kCorrelateIns)
      with_count<kCorrelateOuts>(out_channels_ - o, [&](auto outs) {
        with_count<kCorrelateIns>(weights - k, [&](auto ins) {
          correlate_block<T, outs, ins>(grads + o * walk.out_pitch, buffer, k_offsets.data() + k,
                                        walk, partial + o * weights + k, weights);
        });
      });
}

template class DirectConv<float>;
template class DirectConv<double>;

}  // namespace ds::cpu
