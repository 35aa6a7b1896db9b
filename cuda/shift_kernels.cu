// The shift kernels on the GPU (docs/cuda.md): the CPU kernels' exact integer result
// (docs/kernels.md) from packed codes, with shifts, adds and subtracts only. A nonzero weight's
// term is x << a, negated by a select when the code's sign bit is set (no multiply); the sum is
// kept in int64, which every accumulator but the wide one bounds (m + K + bit_width(cols) <= 62),
// and floored once by an arithmetic shift. The wide layers sum per exponent and floor by the
// same Horner scheme as shiftops/kernel/wide.cpp.
#include <cuda_runtime.h>

#include <cmath>

#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"

namespace ds::cuda {

namespace {

// Exponents k a packed layer can hold: 0..127 (the wide path's buckets are indexed by k).
constexpr int kMaxExponents = 128;

// The code of weight i of a packed row: false for a zero weight, else its shift amount and sign.
__device__ inline bool decode(const ShiftRows& w, const std::uint8_t* row, std::int64_t i,
                              int& amount, bool& negative) {
  if (w.code_bits == 8) {
    const std::uint8_t code = row[i];
    amount = code & 0x7F;
    negative = (code & 0x80) != 0;
    return amount != 0x7F;
  }
  // Weight 32h + j (j < 16) of a 64-weight block is the low nibble of byte 16h + j, weight
  // 32h + 16 + j the high nibble (shiftops/packed.hpp).
  const std::int64_t j = i & 63;
  const std::uint8_t byte = row[((i >> 6) << 5) + ((j >> 5) << 4) + (j & 15)];
  const int nibble = (j & 16) ? byte >> 4 : byte & 15;
  amount = nibble & 7;
  negative = (nibble & 8) != 0;
  return amount != 7;
}

__device__ inline std::int64_t widen(std::int32_t x, bool is_unsigned) {
  return is_unsigned ? static_cast<std::int64_t>(static_cast<std::uint32_t>(x)) : x;
}

// One output's exact sum, floored: int64 terms x << a, or (Wide) per-exponent buckets.
template <bool Wide>
struct Accumulator;

template <>
struct Accumulator<false> {
  std::int64_t sum = 0;
  __device__ explicit Accumulator(int) {}
  __device__ void add(int amount, bool negative, std::int64_t value) {
    const std::int64_t term = value << amount;
    sum += negative ? -term : term;
  }
  __device__ std::int64_t floored(int max_k) const { return sum >> max_k; }
};

template <>
struct Accumulator<true> {
  std::int64_t buckets[kMaxExponents];  // buckets[k]: the sum of the terms of weight +-2^-k
  int top;
  __device__ explicit Accumulator(int max_k) : top(max_k) {
    for (int k = 0; k <= top; ++k) buckets[k] = 0;
  }
  __device__ void add(int amount, bool negative, std::int64_t value) {
    buckets[top - amount] += negative ? -value : value;
  }
  // c_K = S_K, c_(k-1) = S_(k-1) + floor(c_k / 2): c_0 = floor(sum_k S_k 2^-k).
  __device__ std::int64_t floored(int) const {
    std::int64_t c = buckets[top];
    for (int k = top; k > 0; --k) c = buckets[k - 1] + (c >> 1);
    return c;
  }
};

// Stores output `index` of row `row` from its floored sum: the integer, or its value y / 2^F.
__device__ inline void store(const ShiftOutput& out, const ShiftRows& w, std::int64_t index,
                             std::int64_t row, std::int64_t floored) {
  const std::int64_t y = w.bias ? floored + w.bias[row] : floored;
  if (out.integers)
    out.integers[index] = y;
  else
    out.values[index] = static_cast<float>(y) * out.scale;
}

// Batched linear, int64: one warp per (sample, row), its lanes striding over the columns (the
// codes of a row are read once per sample, coalesced), then a shuffle reduction.
__global__ void shift_linear_warp_kernel(ShiftRows w, const std::int32_t* x, std::int64_t batch,
                                         bool is_unsigned, ShiftOutput out) {
  const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (warp >= batch * w.rows) return;  // the whole warp leaves together
  const std::int64_t n = warp / w.rows, r = warp % w.rows;
  const std::uint8_t* row = w.codes + r * w.row_bytes;
  const std::int32_t* sample = x + n * w.cols;
  Accumulator<false> acc(w.max_k);
  for (std::int64_t i = lane; i < w.cols; i += 32) {
    int amount;
    bool negative;
    if (decode(w, row, i, amount, negative))
      acc.add(amount, negative, widen(sample[i], is_unsigned));
  }
  for (int offset = 16; offset > 0; offset >>= 1)
    acc.sum += __shfl_down_sync(0xFFFFFFFFu, acc.sum, offset);
  if (lane == 0) store(out, w, warp, r, acc.floored(w.max_k));
}

// Convolution (and the wide linear layer, as a 1x1 convolution of 1x1 images): one thread per
// output, neighbouring threads on neighbouring positions of the same output channel, so that a
// warp reads each code once (broadcast) and neighbouring inputs.
template <bool Wide>
__global__ void shift_conv_kernel(ShiftRows w, const std::int32_t* x, ShiftConvShape g,
                                  bool is_unsigned, ShiftOutput out) {
  const std::int64_t total = g.batch * w.rows * g.out_h * g.out_w;
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t rows_per_group = w.rows / g.groups;
  const std::int64_t group_channels = g.channels / g.groups;
  for (std::int64_t index = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       index < total; index += step) {
    const std::int64_t ox = index % g.out_w;
    std::int64_t rest = index / g.out_w;
    const std::int64_t oy = rest % g.out_h;
    rest /= g.out_h;
    const std::int64_t o = rest % w.rows, n = rest / w.rows;
    const std::int64_t first_channel = o / rows_per_group * group_channels;
    const std::uint8_t* row = w.codes + o * w.row_bytes;
    Accumulator<Wide> acc(w.max_k);
    std::int64_t i = 0;
    for (std::int64_t c = 0; c < group_channels; ++c) {
      const std::int32_t* plane = x + ((n * g.channels + first_channel + c) * g.height) * g.width;
      for (std::int64_t ky = 0; ky < g.kernel_h; ++ky) {
        const std::int64_t iy = oy * g.stride_h - g.pad_h + ky * g.dilation_h;
        for (std::int64_t kx = 0; kx < g.kernel_w; ++kx, ++i) {
          const std::int64_t ix = ox * g.stride_w - g.pad_w + kx * g.dilation_w;
          int amount;
          bool negative;
          // Zero padding contributes nothing, as on the CPU (the fixed-point input is padded
          // with zeros).
          if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
          if (decode(w, row, i, amount, negative))
            acc.add(amount, negative, widen(plane[iy * g.width + ix], is_unsigned));
        }
      }
    }
    store(out, w, index, o, acc.floored(w.max_k));
  }
}

void launch_conv(const ShiftRows& w, const std::int32_t* x, const ShiftConvShape& shape,
                 bool is_unsigned, bool wide, const ShiftOutput& out, cudaStream_t stream) {
  const std::int64_t total = shape.batch * w.rows * shape.out_h * shape.out_w;
  if (total == 0) return;
  if (wide) {
    shift_conv_kernel<true>
        <<<blocks_for(total), kThreads, 0, stream>>>(w, x, shape, is_unsigned, out);
    check_launch("shift_conv_kernel<wide>");
  } else {
    shift_conv_kernel<false>
        <<<blocks_for(total), kThreads, 0, stream>>>(w, x, shape, is_unsigned, out);
    check_launch("shift_conv_kernel");
  }
}

}  // namespace

void launch_shift_linear(const ShiftRows& w, const std::int32_t* x, std::int64_t batch,
                         bool is_unsigned, bool wide, const ShiftOutput& out, cudaStream_t stream) {
  if (wide) {
    const ShiftConvShape as_conv{batch, w.cols, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
    return launch_conv(w, x, as_conv, is_unsigned, true, out, stream);
  }
  const std::int64_t warps = batch * w.rows;
  if (warps == 0) return;
  shift_linear_warp_kernel<<<blocks_covering(warps * 32, kThreads), kThreads, 0, stream>>>(
      w, x, batch, is_unsigned, out);
  check_launch("shift_linear_warp_kernel");
}

void launch_shift_conv2d(const ShiftRows& w, const std::int32_t* x, const ShiftConvShape& shape,
                         bool is_unsigned, bool wide, const ShiftOutput& out, cudaStream_t stream) {
  launch_conv(w, x, shape, is_unsigned, wide, out, stream);
}

namespace {

__global__ void quantize_kernel(const float* x, std::int64_t n, double scale, double lowest,
                                double highest, std::int32_t* out, int* saw_nan) {
  const std::int64_t step = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += step) {
    const float value = x[i];
    if (value != value) {
      *saw_nan = 1;
      out[i] = 0;
      continue;
    }
    // x * 2^F is exact in double, and so is its floor (as in shiftops/kernel/layer_kernel.cpp);
    // exact for subnormal x too, as long as nothing is built with --use_fast_math (-ftz).
    const double scaled = floor(static_cast<double>(value) * scale);
    out[i] =
        static_cast<std::int32_t>(scaled < lowest ? lowest : (scaled > highest ? highest : scaled));
  }
}

}  // namespace

void launch_shift_quantize(const float* x, std::int64_t n, int fraction_bits, double lowest,
                           double highest, std::int32_t* out, int* saw_nan, cudaStream_t stream) {
  if (n == 0) return;
  quantize_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, n, std::ldexp(1.0, fraction_bits),
                                                          lowest, highest, out, saw_nan);
  check_launch("quantize_kernel");
}

}  // namespace ds::cuda
