#include "tensor/shape.hpp"

#include <algorithm>
#include <sstream>

#include "tensor/error.hpp"

namespace ds {

namespace {

// a * b, or a ds::Error naming the shape when the product leaves int64 (a shape that large
// cannot be allocated, and a wrapped count would pass every later size check).
std::int64_t checked_product(std::int64_t a, std::int64_t b, const Shape& shape) {
  std::int64_t product;
  if (__builtin_mul_overflow(a, b, &product))
    fail("shape ", shape_str(shape), " has more elements than a 64-bit count can hold");
  return product;
}

}  // namespace

std::int64_t numel_of(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n = checked_product(n, d, shape);
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride = checked_product(stride, std::max<std::int64_t>(shape[i], 1), shape);
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const std::int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, ": shapes ", a, " and ", b, " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int normalize_dim(std::int64_t dim, std::size_t ndim, const char* op) {
  const auto n = static_cast<std::int64_t>(ndim);
  const std::int64_t d = dim < 0 ? dim + n : dim;
  if (d < 0 || d >= n)
    fail(op, ": dim ", dim, " is out of range for a tensor with ", ndim, " dims");
  return static_cast<int>(d);
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

}  // namespace ds

std::ostream& std::operator<<(std::ostream& out, const ds::Shape& shape) {
  return out << ds::shape_str(shape);
}
