#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ds {

using Shape = std::vector<std::int64_t>;

std::int64_t numel_of(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// NumPy broadcasting of two shapes; `op` names the operation in the error message.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Maps a possibly negative dim into [0, ndim), failing with the op's name when out of range.
int normalize_dim(std::int64_t dim, std::size_t ndim, const char* op);
std::string shape_str(const Shape& shape);

}  // namespace ds

namespace std {
// Lets shapes be streamed into error messages: "[2, 3]".
ostream& operator<<(ostream& out, const ds::Shape& shape);
}  // namespace std
