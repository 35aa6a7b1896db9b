#pragma once
#include <cstddef>
#include <cstdint>
#include <ostream>

#include "tensor/error.hpp"

namespace ds {

// f64 exists for gradient checks; the integer types hold labels, masks and packed shift codes.
enum class DType : std::uint8_t { f32, f64, i32, i8, u8 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
inline bool is_floating(DType dtype) { return dtype == DType::f32 || dtype == DType::f64; }
std::ostream& operator<<(std::ostream& out, DType dtype);

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<std::int8_t>() {
  return DType::i8;
}
template <>
constexpr DType dtype_of<std::uint8_t>() {
  return DType::u8;
}

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls fn(TypeTag<T>{}) with T the C++ type of dtype; the one place that maps the enum to types.
template <typename Fn>
decltype(auto) dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::f32:
      return fn(TypeTag<float>{});
    case DType::f64:
      return fn(TypeTag<double>{});
    case DType::i32:
      return fn(TypeTag<std::int32_t>{});
    case DType::i8:
      return fn(TypeTag<std::int8_t>{});
    case DType::u8:
      return fn(TypeTag<std::uint8_t>{});
  }
  fail("unknown dtype ", static_cast<int>(dtype));
}

template <typename Fn>
decltype(auto) dispatch_floating(DType dtype, const char* op, Fn&& fn) {
  switch (dtype) {
    case DType::f32:
      return fn(TypeTag<float>{});
    case DType::f64:
      return fn(TypeTag<double>{});
    default:
      fail(op, ": needs a floating-point tensor (f32 or f64), got ", dtype_name(dtype));
  }
}

}  // namespace ds
