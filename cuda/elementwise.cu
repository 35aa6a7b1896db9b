// Elementwise kernels: copies with dtype conversion, fill, unary and binary ops, clamp and
// where. The op is a run-time switch inside one kernel per dtype: it is the same for every
// thread, costs a few instructions against a memory-bound loop, and keeps the number of
// kernels (and the compile time) small. Semantics follow tensor/cpu/elementwise.cpp.
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "cuda/kernels.hpp"
#include "cuda/launch.cuh"

namespace ds::cuda {

namespace {

template <typename T>
__device__ T apply_unary(UnaryOp op, T x) {
  switch (op) {
    case UnaryOp::neg:
      return static_cast<T>(-x);
    case UnaryOp::abs:
      if constexpr (std::is_unsigned_v<T>)
        return x;
      else
        return static_cast<T>(x < T(0) ? -x : x);
    case UnaryOp::sign:
      if constexpr (std::is_unsigned_v<T>)
        return static_cast<T>(x != 0);
      else
        return static_cast<T>((T(0) < x) - (x < T(0)));
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case UnaryOp::exp:
        return exp(x);
      case UnaryOp::exp2:
        return exp2(x);
      case UnaryOp::log:
        return log(x);
      case UnaryOp::log2:
        return log2(x);
      case UnaryOp::sqrt:
        return sqrt(x);
      case UnaryOp::floor:
        return floor(x);
      case UnaryOp::round:
        return rint(x);  // half to even, as std::nearbyint in the default rounding mode
      default:
        return x;
    }
  } else {
    return x;  // floor and round of an integer (the host refuses the others)
  }
}

// Integer add/sub/mul wrap around (computed in the unsigned type), as on the CPU.
template <typename T, typename Fn>
__device__ T wrapping(T a, T b, Fn fn) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(fn(static_cast<U>(a), static_cast<U>(b))));
  } else {
    return fn(a, b);
  }
}

struct Plus {
  template <typename T>
  __device__ auto operator()(T a, T b) const {
    return a + b;
  }
};
struct Minus {
  template <typename T>
  __device__ auto operator()(T a, T b) const {
    return a - b;
  }
};
struct Times {
  template <typename T>
  __device__ auto operator()(T a, T b) const {
    return a * b;
  }
};

// Arithmetic ops; comparisons are apply_comparison.
template <typename T>
__device__ T apply_binary(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::add:
      return wrapping(x, y, Plus{});
    case BinaryOp::sub:
      return wrapping(x, y, Minus{});
    case BinaryOp::mul:
      return wrapping(x, y, Times{});
    case BinaryOp::maximum:
      return x != x || x > y ? x : y;  // NaN propagates
    case BinaryOp::minimum:
      return x != x || x < y ? x : y;
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (op == BinaryOp::div) return x / y;
    return pow(x, y);
  } else {
    return x;  // div and pow of integers are refused by the host
  }
}

template <typename T>
__device__ std::uint8_t apply_comparison(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::eq:
      return x == y;
    case BinaryOp::ne:
      return x != y;
    case BinaryOp::lt:
      return x < y;
    case BinaryOp::le:
      return x <= y;
    case BinaryOp::gt:
      return x > y;
    default:
      return x >= y;
  }
}

// One functor per kernel: what a thread does with the element at the given operand offsets.
template <typename D, typename S>
struct CopyElement {
  D* out;
  const S* in;
  __device__ void operator()(const std::int64_t (&at)[2]) const {
    out[at[0]] = static_cast<D>(in[at[1]]);
  }
};

template <typename T>
struct FillElement {
  T* out;
  T value;
  __device__ void operator()(const std::int64_t (&at)[1]) const { out[at[0]] = value; }
};

template <typename T>
struct UnaryElement {
  T* out;
  const T* in;
  UnaryOp op;
  __device__ void operator()(const std::int64_t (&at)[2]) const {
    out[at[0]] = apply_unary<T>(op, in[at[1]]);
  }
};

template <typename T>
struct ClampElement {
  T* out;
  const T* in;
  double low, high;
  // Comparing in double keeps infinite bounds meaningful for integer dtypes; NaN passes.
  __device__ void operator()(const std::int64_t (&at)[2]) const {
    const T x = in[at[1]];
    const double v = static_cast<double>(x);
    out[at[0]] = v < low ? static_cast<T>(low) : v > high ? static_cast<T>(high) : x;
  }
};

template <typename T>
struct BinaryElement {
  T* out;
  const T* a;
  const T* b;
  BinaryOp op;
  __device__ void operator()(const std::int64_t (&at)[3]) const {
    out[at[0]] = apply_binary<T>(op, a[at[1]], b[at[2]]);
  }
};

template <typename T>
struct CompareElement {
  std::uint8_t* out;
  const T* a;
  const T* b;
  BinaryOp op;
  __device__ void operator()(const std::int64_t (&at)[3]) const {
    out[at[0]] = apply_comparison<T>(op, a[at[1]], b[at[2]]);
  }
};

template <typename T>
struct WhereElement {
  T* out;
  const std::uint8_t* condition;
  const T* a;
  const T* b;
  __device__ void operator()(const std::int64_t (&at)[4]) const {
    out[at[0]] = condition[at[1]] ? a[at[2]] : b[at[3]];
  }
};

}  // namespace

void launch_copy(const Layout<2>& layout, DType out_type, void* out, DType in_type, const void* in,
                 cudaStream_t stream) {
  dispatch_dtype(out_type, [&](auto out_tag) {
    using D = typename decltype(out_tag)::type;
    dispatch_dtype(in_type, [&](auto in_tag) {
      using S = typename decltype(in_tag)::type;
      for_each_element(layout, stream, "copy kernel",
                       CopyElement<D, S>{static_cast<D*>(out), static_cast<const S*>(in)});
    });
  });
}

void launch_fill(const Layout<1>& layout, DType type, void* out, double value,
                 cudaStream_t stream) {
  dispatch_dtype(type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_element(layout, stream, "fill kernel",
                     FillElement<T>{static_cast<T*>(out), static_cast<T>(value)});
  });
}

void launch_unary(UnaryOp op, DType type, const Layout<2>& layout, void* out, const void* in,
                  cudaStream_t stream) {
  const bool integer_safe = op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::sign ||
                            op == UnaryOp::floor || op == UnaryOp::round;
  if (!is_floating(type) && !integer_safe)
    fail(op_name(op), ": not defined for dtype ", dtype_name(type));
  dispatch_dtype(type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_element(layout, stream, "unary kernel",
                     UnaryElement<T>{static_cast<T*>(out), static_cast<const T*>(in), op});
  });
}

void launch_clamp(DType type, const Layout<2>& layout, void* out, const void* in, double low,
                  double high, cudaStream_t stream) {
  dispatch_dtype(type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_element(layout, stream, "clamp kernel",
                     ClampElement<T>{static_cast<T*>(out), static_cast<const T*>(in), low, high});
  });
}

void launch_binary(BinaryOp op, DType type, const Layout<3>& layout, void* out, const void* a,
                   const void* b, cudaStream_t stream) {
  if (!is_floating(type) && (op == BinaryOp::div || op == BinaryOp::pow))
    fail(op_name(op), ": not defined for dtype ", dtype_name(type));
  dispatch_dtype(type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    if (is_comparison(op))
      for_each_element(layout, stream, "comparison kernel",
                       CompareElement<T>{static_cast<std::uint8_t*>(out), pa, pb, op});
    else
      for_each_element(layout, stream, "binary kernel",
                       BinaryElement<T>{static_cast<T*>(out), pa, pb, op});
  });
}

void launch_where(DType type, const Layout<4>& layout, void* out, const void* condition,
                  const void* a, const void* b, cudaStream_t stream) {
  dispatch_dtype(type, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for_each_element(
        layout, stream, "where kernel",
        WhereElement<T>{static_cast<T*>(out), static_cast<const std::uint8_t*>(condition),
                        static_cast<const T*>(a), static_cast<const T*>(b)});
  });
}

}  // namespace ds::cuda
