// Row reductions and softmax. A row is reduced by one warp when it is short and by a block of
// 256 threads when it is long; when there are too few rows to fill the GPU, each long row is
// split into segments whose partial results a second pass combines. Floating sums accumulate
// in double and integer sums in 64 bits, as on the CPU; NaN wins max/min, and arg ops return
// the first extreme (or first NaN) index, as in tensor/cpu/reduce.cpp.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"

namespace ds::cuda {

namespace {

constexpr int kWarp = 32;
constexpr int kBlockWidth = 256;
constexpr std::int64_t kShortRow = 512;
constexpr std::int64_t kSegmentLength = 8192;
constexpr std::int64_t kTargetBlocks = 1024;

template <typename T>
using Accumulator = std::conditional_t<std::is_floating_point_v<T>, double, std::int64_t>;
// Narrow integers are compared as int (there is no 8-bit warp shuffle).
template <typename T>
using Wide = std::conditional_t<(sizeof(T) < 4), int, T>;

template <typename T>
__device__ T shuffle_down(T v, int offset) {
  return __shfl_down_sync(0xffffffffu, v, offset);
}

template <typename In, typename Out>
struct SumReducer {
  using Value = Accumulator<In>;
  __device__ Value identity() const { return 0; }
  __device__ Value load(In x, std::int64_t) const { return static_cast<Value>(x); }
  __device__ Value combine(Value a, Value b) const { return a + b; }
  __device__ Value down(Value v, int offset) const { return shuffle_down(v, offset); }
  __device__ Out finish(Value v) const { return static_cast<Out>(v); }
};

template <typename T, bool IsMax>
struct ExtremumReducer {
  using Value = Wide<T>;
  __device__ Value identity() const {
    if constexpr (std::is_floating_point_v<T>)
      return IsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
    else
      return IsMax ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
  }
  __device__ Value load(T x, std::int64_t) const { return x; }
  __device__ Value combine(Value a, Value b) const {
    if (a != a) return a;  // NaN wins
    if (b != b) return b;
    return (IsMax ? b > a : b < a) ? b : a;
  }
  __device__ Value down(Value v, int offset) const { return shuffle_down(v, offset); }
  __device__ T finish(Value v) const { return static_cast<T>(v); }
};

template <typename T, bool IsMax>
struct ArgReducer {
  struct Value {
    Wide<T> value;
    std::int64_t index;
  };
  __device__ Value identity() const {
    return {ExtremumReducer<T, IsMax>{}.identity(), std::numeric_limits<std::int64_t>::max()};
  }
  __device__ Value load(T x, std::int64_t i) const { return {x, i}; }
  __device__ Value combine(Value a, Value b) const {
    const bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan != b_nan) return a_nan ? a : b;
    if (!a_nan) {
      if (IsMax ? b.value > a.value : b.value < a.value) return b;
      if (IsMax ? a.value > b.value : a.value < b.value) return a;
    }
    return a.index < b.index ? a : b;  // ties (and two NaNs): the first index
  }
  __device__ Value down(Value v, int offset) const {
    return {shuffle_down(v.value, offset), shuffle_down(v.index, offset)};
  }
  __device__ std::int32_t finish(Value v) const { return static_cast<std::int32_t>(v.index); }
};

template <typename R>
__device__ auto warp_reduce(const R& r, typename R::Value v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v = r.combine(v, r.down(v, offset));
  return v;
}

// Each group of Width threads reduces one segment of one row into out[group].
template <int Width, typename R, typename In, typename Out>
__global__ void reduce_kernel(const In* in, std::int64_t row_length, std::int64_t groups,
                              std::int64_t segments, Out* out, R r) {
  const int lane = static_cast<int>(threadIdx.x % Width);
  const std::int64_t group =
      static_cast<std::int64_t>(blockIdx.x) * (blockDim.x / Width) + threadIdx.x / Width;
  if (group >= groups) return;  // whole groups leave together, so the shuffles stay complete
  const std::int64_t row = group / segments, segment = group % segments;
  const std::int64_t per_segment = (row_length + segments - 1) / segments;
  const std::int64_t begin = segment * per_segment;
  const std::int64_t end = begin + per_segment < row_length ? begin + per_segment : row_length;
  const In* x = in + row * row_length;

  auto v = r.identity();
  for (std::int64_t i = begin + lane; i < end; i += Width) v = r.combine(v, r.load(x[i], i));
  v = warp_reduce(r, v);
  if constexpr (Width > kWarp) {
    __shared__ typename R::Value partial[Width / kWarp];
    if (lane % kWarp == 0) partial[lane / kWarp] = v;
    __syncthreads();
    if (lane >= kWarp) return;
    v = lane < Width / kWarp ? partial[lane] : r.identity();
    v = warp_reduce(r, v);
  }
  if (lane == 0) out[group] = r.finish(v);
}

template <typename R, typename In, typename Out>
void reduce_rows(const R& r, const In* in, std::int64_t rows, std::int64_t row_length,
                 std::int64_t segments, Out* out, cudaStream_t stream) {
  const std::int64_t groups = rows * segments;
  if (groups == 0) return;
  if (row_length / segments <= kShortRow) {
    const std::int64_t per_block = kThreads / kWarp;
    reduce_kernel<kWarp><<<blocks_covering(groups, per_block), kThreads, 0, stream>>>(
        in, row_length, groups, segments, out, r);
  } else {
    reduce_kernel<kBlockWidth><<<blocks_covering(groups, 1), kBlockWidth, 0, stream>>>(
        in, row_length, groups, segments, out, r);
  }
  check_launch("reduce kernel");
}

std::int64_t segments_for(ReduceOp op, std::int64_t rows, std::int64_t row_length) {
  if (op == ReduceOp::argmax || op == ReduceOp::argmin || rows == 0) return 1;
  if (rows >= kTargetBlocks || row_length < 2 * kSegmentLength) return 1;
  const std::int64_t by_length = row_length / kSegmentLength;
  const std::int64_t by_rows = (kTargetBlocks + rows - 1) / rows;
  return by_length < by_rows ? by_length : by_rows;
}

template <typename T, bool IsMax>
void reduce_extremum(const T* in, std::int64_t rows, std::int64_t row_length, std::int64_t segments,
                     T* out, void* scratch, cudaStream_t stream) {
  const ExtremumReducer<T, IsMax> r;
  if (segments == 1) return reduce_rows(r, in, rows, row_length, 1, out, stream);
  T* partial = static_cast<T*>(scratch);
  reduce_rows(r, in, rows, row_length, segments, partial, stream);
  reduce_rows(r, partial, rows, segments, 1, out, stream);
}

template <typename T>
__global__ void softmax_kernel(const T* in, std::int64_t rows, std::int64_t n, bool log, T* out) {
  const std::int64_t row =
      static_cast<std::int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const T* x = in + row * n;
  T* y = out + row * n;
  T peak = -std::numeric_limits<T>::infinity();
  for (std::int64_t i = lane; i < n; i += kWarp) peak = x[i] > peak ? x[i] : peak;
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const T other = __shfl_xor_sync(0xffffffffu, peak, offset);
    peak = other > peak ? other : peak;
  }
  if (isinf(peak)) peak = 0;  // all -inf (or +inf) rows: avoid inf - inf
  double total = 0;
  for (std::int64_t i = lane; i < n; i += kWarp) {
    const T e = exp(x[i] - peak);
    y[i] = e;
    total += e;
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    total += __shfl_xor_sync(0xffffffffu, total, offset);
  if (log) {
    const T log_total = static_cast<T>(::log(total));
    for (std::int64_t i = lane; i < n; i += kWarp) y[i] = x[i] - peak - log_total;
  } else {
    const T scale = static_cast<T>(1.0 / total);
    for (std::int64_t i = lane; i < n; i += kWarp) y[i] *= scale;
  }
}

}  // namespace

std::size_t reduce_scratch_bytes(ReduceOp op, DType type, std::int64_t rows,
                                 std::int64_t row_length) {
  const std::int64_t segments = segments_for(op, rows, row_length);
  if (segments == 1) return 0;
  const std::size_t element = op == ReduceOp::sum ? 8 : dtype_size(type);  // double or int64
  return static_cast<std::size_t>(rows * segments) * element;
}

void launch_reduce(ReduceOp op, DType type, const void* in, std::int64_t rows,
                   std::int64_t row_length, void* out, void* scratch, cudaStream_t stream) {
  const std::int64_t segments = segments_for(op, rows, row_length);
  dispatch_dtype(type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(in);
    switch (op) {
      case ReduceOp::sum: {
        if (segments == 1)
          return reduce_rows(SumReducer<T, T>{}, x, rows, row_length, 1, static_cast<T*>(out),
                             stream);
        auto* partial = static_cast<Accumulator<T>*>(scratch);
        reduce_rows(SumReducer<T, Accumulator<T>>{}, x, rows, row_length, segments, partial,
                    stream);
        return reduce_rows(SumReducer<Accumulator<T>, T>{}, partial, rows, segments, 1,
                           static_cast<T*>(out), stream);
      }
      case ReduceOp::max:
        return reduce_extremum<T, true>(x, rows, row_length, segments, static_cast<T*>(out),
                                        scratch, stream);
      case ReduceOp::min:
        return reduce_extremum<T, false>(x, rows, row_length, segments, static_cast<T*>(out),
                                         scratch, stream);
      case ReduceOp::argmax:
        return reduce_rows(ArgReducer<T, true>{}, x, rows, row_length, 1,
                           static_cast<std::int32_t*>(out), stream);
      case ReduceOp::argmin:
        return reduce_rows(ArgReducer<T, false>{}, x, rows, row_length, 1,
                           static_cast<std::int32_t*>(out), stream);
    }
  });
}

void launch_softmax(DType type, const void* in, std::int64_t rows, std::int64_t row_length,
                    bool log, void* out, cudaStream_t stream) {
  if (rows == 0 || row_length == 0) return;
  dispatch_floating(type, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::int64_t per_block = kThreads / kWarp;
    softmax_kernel<T><<<blocks_covering(rows, per_block), kThreads, 0, stream>>>(
        static_cast<const T*>(in), rows, row_length, log, static_cast<T*>(out));
    check_launch("softmax kernel");
  });
}

}  // namespace ds::cuda
