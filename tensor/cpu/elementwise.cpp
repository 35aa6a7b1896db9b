// Elementwise CPU kernels: one templated loop per arity, the operation passed as a lambda so
// that each (op, dtype) pair compiles to its own vectorisable inner loop.
// GCC 12 reports false "uninitialized" warnings inside its AVX-512 intrinsics when Eigen's
// packet code is inlined (see matmul.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <Eigen/Core>
#include <cmath>
#include <type_traits>

#include "tensor/cpu/cpu_backend.hpp"
#include "tensor/cpu/strided_loop.hpp"
#include "tensor/tensor.hpp"

namespace ds::cpu {

namespace {

template <typename In, typename Out, typename Fn>
void map1(const Tensor& in, const Tensor& out, Fn fn) {
  const In* a = in.data<In>();
  Out* o = out.data<Out>();
  for_each_run<2>(out.shape(), {&out.strides(), &in.strides()}, [&](const Run<2>& r) {
    // A local copy of the op: its captured constants cannot alias the output, so they stay in
    // registers and the loop vectorises.
    const Fn op = fn;
    Out* po = o + r.offset[0];
    const In* pa = a + r.offset[1];
    if (r.stride[0] == 1 && r.stride[1] == 1) {
#pragma omp simd
      for (std::int64_t n = 0; n < r.length; ++n) po[n] = op(pa[n]);
    } else {
      for (std::int64_t n = 0; n < r.length; ++n) po[n * r.stride[0]] = op(pa[n * r.stride[1]]);
    }
  });
}

// exp and log through Eigen's vectorised array functions where the run is contiguous (the C
// library's expf/logf are only vectorised under -ffast-math); other layouts use std::.
template <typename T, typename ArrayFn, typename ScalarFn>
void map1_vectorised(const Tensor& in, const Tensor& out, ArrayFn array_fn, ScalarFn scalar_fn) {
  using Array = Eigen::Array<T, Eigen::Dynamic, 1>;
  const T* a = in.data<T>();
  T* o = out.data<T>();
  for_each_run<2>(out.shape(), {&out.strides(), &in.strides()}, [&](const Run<2>& r) {
    T* po = o + r.offset[0];
    const T* pa = a + r.offset[1];
    if (r.stride[0] == 1 && r.stride[1] == 1) {
      Eigen::Map<Array>(po, r.length) = array_fn(Eigen::Map<const Array>(pa, r.length));
    } else {
      for (std::int64_t n = 0; n < r.length; ++n)
        po[n * r.stride[0]] = scalar_fn(pa[n * r.stride[1]]);
    }
  });
}

template <typename In, typename Out, typename Fn>
void map2(const Tensor& lhs, const Tensor& rhs, const Tensor& out, Fn fn) {
  const In* a = lhs.data<In>();
  const In* b = rhs.data<In>();
  Out* o = out.data<Out>();
  for_each_run<3>(out.shape(), {&out.strides(), &lhs.strides(), &rhs.strides()},
                  [&](const Run<3>& r) {
                    Out* po = o + r.offset[0];
                    const In* pa = a + r.offset[1];
                    const In* pb = b + r.offset[2];
                    const auto [so, sa, sb] = r.stride;
                    // The common layouts get loops the compiler can vectorise.
                    if (so == 1 && sa == 1 && sb == 1) {
#pragma omp simd
                      for (std::int64_t n = 0; n < r.length; ++n) po[n] = fn(pa[n], pb[n]);
                    } else if (so == 1 && sa == 1 && sb == 0) {
                      const In vb = *pb;
#pragma omp simd
                      for (std::int64_t n = 0; n < r.length; ++n) po[n] = fn(pa[n], vb);
                    } else if (so == 1 && sa == 0 && sb == 1) {
                      const In va = *pa;
#pragma omp simd
                      for (std::int64_t n = 0; n < r.length; ++n) po[n] = fn(va, pb[n]);
                    } else {
                      for (std::int64_t n = 0; n < r.length; ++n)
                        po[n * so] = fn(pa[n * sa], pb[n * sb]);
                    }
                  });
}

// Integer add/sub/mul wrap around instead of invoking undefined behaviour on overflow.
template <typename T, typename Fn>
T wrapping(T a, T b, Fn fn) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(fn(static_cast<U>(a), static_cast<U>(b))));
  } else {
    return fn(a, b);
  }
}

template <typename T>
T sign_of(T x) {
  return static_cast<T>((T(0) < x) - (x < T(0)));
}

}  // namespace

void CpuBackend::unary(UnaryOp op, const Tensor& in, const Tensor& out) {
  dispatch_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (op) {
      case UnaryOp::neg:
        return map1<T, T>(in, out, [](T x) { return static_cast<T>(-x); });
      case UnaryOp::abs:
        return map1<T, T>(in, out, [](T x) { return static_cast<T>(x < T(0) ? -x : x); });
      case UnaryOp::sign:
        return map1<T, T>(in, out, [](T x) { return sign_of(x); });
      default:
        break;
    }
    if constexpr (std::is_floating_point_v<T>) {
      switch (op) {
        case UnaryOp::exp:
          return map1_vectorised<T>(
              in, out, [](const auto& x) { return x.exp(); }, [](T x) { return std::exp(x); });
        case UnaryOp::exp2:
          return map1<T, T>(in, out, [](T x) { return std::exp2(x); });
        case UnaryOp::log:
          return map1_vectorised<T>(
              in, out, [](const auto& x) { return x.log(); }, [](T x) { return std::log(x); });
        case UnaryOp::log2:
          return map1<T, T>(in, out, [](T x) { return std::log2(x); });
        case UnaryOp::sqrt:
          return map1<T, T>(in, out, [](T x) { return std::sqrt(x); });
        case UnaryOp::floor:
          return map1<T, T>(in, out, [](T x) { return std::floor(x); });
        case UnaryOp::round:
          return map1<T, T>(in, out, [](T x) { return std::nearbyint(x); });
        default:
          break;
      }
    } else if (op == UnaryOp::floor || op == UnaryOp::round) {
      return map1<T, T>(in, out, [](T x) { return x; });
    }
    fail(op_name(op), ": not defined for dtype ", dtype_name(in.dtype()));
  });
}

void CpuBackend::clamp(const Tensor& in, double low, double high, const Tensor& out) {
  dispatch_dtype(in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_floating_point_v<T>) {
      // Bounds in T (an out-of-range bound becomes an infinity, which clamps the same) keep the
      // loop vectorisable; NaN passes.
      const T lo = static_cast<T>(low), hi = static_cast<T>(high);
      map1<T, T>(in, out, [lo, hi](T x) { return x < lo ? lo : x > hi ? hi : x; });
    } else {
      // Comparing in double keeps infinite bounds meaningful for integer dtypes.
      map1<T, T>(in, out, [low, high](T x) {
        const double v = static_cast<double>(x);
        return v < low ? static_cast<T>(low) : v > high ? static_cast<T>(high) : x;
      });
    }
  });
}

void CpuBackend::relu_backward(const Tensor& output, const Tensor& grad, const Tensor& out) {
  dispatch_dtype(grad.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    map2<T, T>(output, grad, out, [](T y, T g) { return y > T(0) ? g : T(0); });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_dtype(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using U8 = std::uint8_t;
    switch (op) {
      case BinaryOp::add:
        return map2<T, T>(a, b, out, [](T x, T y) { return wrapping(x, y, std::plus<>{}); });
      case BinaryOp::sub:
        return map2<T, T>(a, b, out, [](T x, T y) { return wrapping(x, y, std::minus<>{}); });
      case BinaryOp::mul:
        return map2<T, T>(a, b, out, [](T x, T y) { return wrapping(x, y, std::multiplies<>{}); });
      case BinaryOp::maximum:
        return map2<T, T>(a, b, out, [](T x, T y) { return x != x || x > y ? x : y; });
      case BinaryOp::minimum:
        return map2<T, T>(a, b, out, [](T x, T y) { return x != x || x < y ? x : y; });
      case BinaryOp::eq:
        return map2<T, U8>(a, b, out, [](T x, T y) { return U8(x == y); });
      case BinaryOp::ne:
        return map2<T, U8>(a, b, out, [](T x, T y) { return U8(x != y); });
      case BinaryOp::lt:
        return map2<T, U8>(a, b, out, [](T x, T y) { return U8(x < y); });
      case BinaryOp::le:
        return map2<T, U8>(a, b, out, [](T x, T y) { return U8(x <= y); });
      case BinaryOp::gt:
        return map2<T, U8>(a, b, out, [](T x, T y) { return U8(x > y); });
      case BinaryOp::ge:
        return map2<T, U8>(a, b, out, [](T x, T y) { return U8(x >= y); });
      default:
        break;
    }
    if constexpr (std::is_floating_point_v<T>) {
      switch (op) {
        case BinaryOp::div:
          return map2<T, T>(a, b, out, [](T x, T y) { return x / y; });
        case BinaryOp::pow:
          return map2<T, T>(a, b, out, [](T x, T y) { return std::pow(x, y); });
        default:
          break;
      }
    }
    fail(op_name(op), ": not defined for dtype ", dtype_name(a.dtype()));
  });
}

void CpuBackend::where(const Tensor& condition, const Tensor& a, const Tensor& b,
                       const Tensor& out) {
  dispatch_dtype(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::uint8_t* c = condition.data<std::uint8_t>();
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* o = out.data<T>();
    for_each_run<4>(out.shape(), {&out.strides(), &condition.strides(), &a.strides(), &b.strides()},
                    [&](const Run<4>& r) {
                      // The common layout (dense operands, maybe one scalar) gets a loop the
                      // compiler can vectorise.
                      const auto [so, sc, sa, sb] = r.stride;
                      if (so == 1 && sc == 1 && sa == 1 && sb <= 1) {
                        T* po = o + r.offset[0];
                        const std::uint8_t* pc = c + r.offset[1];
                        const T* pa_run = pa + r.offset[2];
                        const T* pb_run = pb + r.offset[3];
                        // Both sides are loaded unconditionally, so the choice is a blend.
                        if (sb == 0) {
                          const T vb = *pb_run;
#pragma omp simd
                          for (std::int64_t n = 0; n < r.length; ++n) {
                            const T va = pa_run[n];
                            po[n] = pc[n] ? va : vb;
                          }
                        } else {
#pragma omp simd
                          for (std::int64_t n = 0; n < r.length; ++n) {
                            const T va = pa_run[n], vb = pb_run[n];
                            po[n] = pc[n] ? va : vb;
                          }
                        }
                        return;
                      }
                      for (std::int64_t n = 0; n < r.length; ++n)
                        o[r.offset[0] + n * r.stride[0]] = c[r.offset[1] + n * r.stride[1]]
                                                               ? pa[r.offset[2] + n * r.stride[2]]
                                                               : pb[r.offset[3] + n * r.stride[3]];
                    });
  });
}

}  // namespace ds::cpu
