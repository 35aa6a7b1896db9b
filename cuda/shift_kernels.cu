// The shift kernels on the GPU (docs/cuda.md): the CPU kernels' exact integer result
// (docs/kernels.md) from packed codes, with shifts, adds, subtracts and bitwise ops only. A
// nonzero weight's term is x << a, negated when the code's sign bit is set as (t ^ m) - m with
// the mask m = 0 or -1 (no multiply); the sum is kept in int64, which every accumulator but the
// wide one bounds (m + K + bit_width(cols) <= 62), and floored once by an arithmetic shift.
// Narrow layers (4-bit codes, at most 20-bit activations) add each lane's 32 terms in int32
// first. The wide layers sum per exponent and floor by the same Horner scheme as
// shiftops/kernel/wide.cpp.
#include <cuda_runtime.h>

#include <algorithm>
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

// The wide layers' exact sum of one output, floored: per-exponent buckets.
struct WideSum {
  std::int64_t buckets[kMaxExponents];  // buckets[k]: the sum of the terms of weight +-2^-k
  int top;
  __device__ explicit WideSum(int max_k) : top(max_k) {
    for (int k = 0; k <= top; ++k) buckets[k] = 0;
  }
  __device__ void add(int amount, bool negative, std::int64_t value) {
    buckets[top - amount] += negative ? -value : value;
  }
  // c_K = S_K, c_(k-1) = S_(k-1) + floor(c_k / 2): c_0 = floor(sum_k S_k 2^-k).
  __device__ std::int64_t floored() const {
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

// The shift GEMM: y[sample][row] = the floored sum over the columns, for linear inputs and for
// unfolded convolution columns alike. A block of kGemmWarps warps owns kGemmWarps consecutive
// rows (a warp each) and Samples samples. It stages the samples' inputs in shared memory, a
// tile of columns at a time, so that each input is read from memory once per block and then by
// every warp; each lane reads 16 bytes of its row's codes per chunk (32 weights of 4 bits or 16
// of 8, consecutive in the row: shiftops/packed.hpp), decodes them once and applies them to
// every sample of the tile. The lanes' sums meet in a shuffle reduction at the end.
constexpr int kGemmWarps = 8;

template <int CodeBits>
constexpr int kLaneWeights = CodeBits == 4 ? 32 : 16;

// One sample per block when the batch is small (no wasted lanes, more columns per tile);
// kTileSamples when it is large (each code decoded once per kTileSamples samples).
constexpr int kTileSamples = 8;
template <int Samples>
constexpr int kTileCols = Samples == 1 ? 8192 : 1024;

// The staged inputs are padded by one word every 32 so that lane L, reading column 32L + j
// (16L + j with 8-bit codes), hits bank L + j: no two lanes of a warp share a bank.
__device__ inline int padded(int column) { return column + (column >> 5); }

// The 16 code bytes of a lane as (shift, sign mask) pairs in column order. Narrow: the shift of
// a zero weight is 32, which __funnelshift_lc turns into a zero term; Wide64: its shift is 0 and
// its mask marks it zero instead.
template <int CodeBits>
__device__ inline void decode_lane(uint4 raw, int (&shift)[kLaneWeights<CodeBits>],
                                   int (&mask)[kLaneWeights<CodeBits>],
                                   bool (&zero)[kLaneWeights<CodeBits>]) {
  const std::uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int byte = 0; byte < 16; ++byte) {
    const std::uint32_t value = (words[byte >> 2] >> ((byte & 3) * 8)) & 0xFF;
    if constexpr (CodeBits == 4) {
      // Byte j of a 16-byte group: weight j in the low nibble, weight 16 + j in the high one.
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const std::uint32_t nibble = (value >> (4 * half)) & 0xF;
        const int j = byte + 16 * half;
        zero[j] = (nibble & 7) == 7;
        shift[j] = zero[j] ? 32 : static_cast<int>(nibble & 7);
        mask[j] = zero[j] ? 0 : -static_cast<int>(nibble >> 3);
      }
    } else {
      zero[byte] = (value & 0x7F) == 0x7F;
      shift[byte] = zero[byte] ? 0 : static_cast<int>(value & 0x7F);
      mask[byte] = zero[byte] ? 0 : -static_cast<int>(value >> 7);
    }
  }
}

// Stages columns [first_col, first_col + cols) of the block's samples into `tile`, and zeros up
// to the next multiple of 32 columns (a lane reads its 16 or 32 columns whole). Linear inputs
// are contiguous along the columns, unfolded ones along the samples: the walk takes the
// contiguous dimension fastest, so that its reads coalesce, and keeps several loads in flight.
template <int Samples, int Width>
__device__ inline void stage(std::int32_t (&tile)[Samples][Width],
                             const std::int64_t (&x_offset)[Samples], const ShiftGemmOperands& op,
                             std::int64_t first_col, int cols) {
  const int staged = (cols + 31) / 32 * 32;
  const auto value = [&](int s, int c) -> std::int32_t {
    return c < cols && x_offset[s] >= 0 ? op.x[x_offset[s] + (first_col + c) * op.x_col_stride] : 0;
  };
  if (op.x_col_stride != 1 && Samples > 1) {
    constexpr int kColsPerPass = kGemmWarps * 32 / Samples;
    const int s = threadIdx.x % Samples;
#pragma unroll 4
    for (int c = threadIdx.x / Samples; c < staged; c += kColsPerPass)
      tile[s][padded(c)] = value(s, c);
  } else {
#pragma unroll
    for (int s = 0; s < Samples; ++s)
#pragma unroll 4
      for (int c = threadIdx.x; c < staged; c += kGemmWarps * 32) tile[s][padded(c)] = value(s, c);
  }
}

template <int CodeBits, bool Narrow, int Samples>
__global__ void __launch_bounds__(kGemmWarps * 32)
    shift_gemm_kernel(ShiftRows w, ShiftGemmOperands op, bool is_unsigned, ShiftOutput out) {
  constexpr int kLane = kLaneWeights<CodeBits>;
  constexpr int kChunkCols = 32 * kLane;
  constexpr int kCols = kTileCols<Samples>;
  // One word more per sample row puts the samples' rows on different banks for the staging.
  __shared__ std::int32_t tile[Samples][kCols + kCols / 32 + 1];
  __shared__ std::int64_t x_offset[Samples];  // of each sample's column 0; -1 past the last
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const std::int64_t first_sample = static_cast<std::int64_t>(blockIdx.x) * Samples;
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.y) * kGemmWarps + warp;
  const bool has_row = row < w.rows;  // warps past the last row still help to stage
  const std::uint8_t* codes = w.codes + (has_row ? row : 0) * w.row_bytes;
  if (threadIdx.x < Samples) {
    const std::int64_t s = first_sample + threadIdx.x;
    x_offset[threadIdx.x] =
        s < op.samples ? s / op.positions * op.x_image_stride + s % op.positions : -1;
  }
  std::int64_t acc[Samples];
#pragma unroll
  for (int s = 0; s < Samples; ++s) acc[s] = 0;

  for (std::int64_t first_col = 0; first_col < w.cols; first_col += kCols) {
    const int cols = static_cast<int>(min(static_cast<std::int64_t>(kCols), w.cols - first_col));
    // The row's first codes are on their way from memory while the inputs are staged.
    const std::uint8_t* tile_codes = codes + first_col * CodeBits / 8;
    uint4 next = {};
    if (has_row && lane * kLane < cols)
      next = *reinterpret_cast<const uint4*>(tile_codes + lane * kLane * CodeBits / 8);
    __syncthreads();  // the previous tile is consumed (and x_offset written)
    stage(tile, x_offset, op, first_col, cols);
    __syncthreads();
    if (!has_row) continue;
#pragma unroll 1
    for (int chunk = 0; chunk < cols; chunk += kChunkCols) {
      const int lane_col = chunk + lane * kLane;  // within the tile
      const uint4 raw = next;
      if (lane_col + kChunkCols < cols)
        next = *reinterpret_cast<const uint4*>(tile_codes + (lane_col + kChunkCols) * CodeBits / 8);
      if (lane_col >= cols) continue;
      int shift[kLane], mask[kLane];
      bool zero[kLane];
      decode_lane<CodeBits>(raw, shift, mask, zero);
#pragma unroll
      for (int s = 0; s < Samples; ++s) {
        const std::int32_t* x = tile[s];
        if constexpr (Narrow) {
          // The caller guarantees |x| << 6 summed over 32 weights fits an int32.
          std::int32_t partial = 0;
#pragma unroll
          for (int j = 0; j < kLane; ++j) {
            const std::int32_t term = static_cast<std::int32_t>(
                __funnelshift_lc(0u, static_cast<std::uint32_t>(x[padded(lane_col + j)]),
                                 static_cast<std::uint32_t>(shift[j])));
            partial += (term ^ mask[j]) - mask[j];
          }
          acc[s] += partial;
        } else {
#pragma unroll
          for (int j = 0; j < kLane; ++j) {
            const std::int64_t value = zero[j] ? 0 : widen(x[padded(lane_col + j)], is_unsigned);
            const std::int64_t term = value << shift[j];
            acc[s] += (term ^ mask[j]) - mask[j];
          }
        }
      }
    }
  }
  if (!has_row) return;
#pragma unroll
  for (int s = 0; s < Samples; ++s)
    for (int offset = 16; offset > 0; offset >>= 1)
      acc[s] += __shfl_xor_sync(0xFFFFFFFFu, acc[s], offset);
      // After the butterfly every lane holds every sum: lane s stores sample s.
#pragma unroll
  for (int s = 0; s < Samples; ++s) {
    const std::int64_t sample = first_sample + s;
    if (lane != s || sample >= op.samples) continue;
    const std::int64_t index =
        sample / op.positions * op.y_image_stride + row * op.y_row_stride + sample % op.positions;
    store(out, w, index, row, acc[s] >> w.max_k);
  }
}

template <int CodeBits, bool Narrow>
void launch_gemm(const ShiftRows& w, const ShiftGemmOperands& op, bool is_unsigned,
                 const ShiftOutput& out, cudaStream_t stream) {
  // The rows go on the grid's second dimension (at most 65535 blocks): a layer with more rows
  // runs in several launches, each on a slice of the rows and of the output.
  constexpr std::int64_t kLaunchRows = std::int64_t{65535} * kGemmWarps;
  for (std::int64_t first_row = 0; first_row < w.rows; first_row += kLaunchRows) {
    ShiftRows slice = w;
    slice.rows = std::min(kLaunchRows, w.rows - first_row);
    slice.codes += first_row * w.row_bytes;
    if (slice.bias) slice.bias += first_row;
    const ShiftOutput slice_out = advanced(out, first_row * op.y_row_stride);
    const unsigned row_blocks = blocks_covering(slice.rows, kGemmWarps);
    if (op.samples < kTileSamples)
      shift_gemm_kernel<CodeBits, Narrow, 1>
          <<<dim3(blocks_covering(op.samples, 1), row_blocks), kGemmWarps * 32, 0, stream>>>(
              slice, op, is_unsigned, slice_out);
    else
      shift_gemm_kernel<CodeBits, Narrow, kTileSamples>
          <<<dim3(blocks_covering(op.samples, kTileSamples), row_blocks), kGemmWarps * 32, 0,
             stream>>>(slice, op, is_unsigned, slice_out);
    check_launch("shift_gemm_kernel");
  }
}

// The wide layers (convolutions, and linear ones as 1x1 convolutions of 1x1 images): one thread
// per output, neighbouring threads on neighbouring positions of the same output channel, so that
// a warp reads each code once (broadcast) and neighbouring inputs. Rare (8-bit codes spanning
// many exponents on wide activations), so kept simple.
__global__ void shift_conv_wide_kernel(ShiftRows w, const std::int32_t* x, ShiftConvShape g,
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
    WideSum acc(w.max_k);
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
    store(out, w, index, o, acc.floored());
  }
}

}  // namespace

void launch_shift_gemm(const ShiftRows& w, const ShiftGemmOperands& operands, ShiftSum sum,
                       bool is_unsigned, const ShiftOutput& out, cudaStream_t stream) {
  if (operands.samples == 0 || w.rows == 0) return;
  if (sum == ShiftSum::narrow) {
    if (w.code_bits != 4) fail("shift kernel: narrow sums need 4-bit codes");
    return launch_gemm<4, true>(w, operands, is_unsigned, out, stream);
  }
  if (w.code_bits == 4) return launch_gemm<4, false>(w, operands, is_unsigned, out, stream);
  launch_gemm<8, false>(w, operands, is_unsigned, out, stream);
}

void launch_shift_conv2d_wide(const ShiftRows& w, const std::int32_t* x,
                              const ShiftConvShape& shape, bool is_unsigned, const ShiftOutput& out,
                              cudaStream_t stream) {
  const std::int64_t total = shape.batch * w.rows * shape.out_h * shape.out_w;
  if (total == 0) return;
  shift_conv_wide_kernel<<<blocks_for(total), kThreads, 0, stream>>>(w, x, shape, is_unsigned, out);
  check_launch("shift_conv_wide_kernel");
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
