#pragma once
// Shared plumbing of the op files: argument checks, broadcasting and kernel launches that
// record nothing. The op files add the autograd side.
#include "autograd/function.hpp"
#include "tensor/backend.hpp"
#include "tensor/tensor.hpp"

namespace ds::detail {

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
// A 0-d tensor holding `value` with the dtype and device of `like`.
Tensor scalar_like(double value, const Tensor& like);
// A non-recording view of the same storage.
Tensor raw_view(const Tensor& t, const Shape& shape, const Shape& strides, std::int64_t offset);
// A non-recording broadcast view (stride 0 along broadcast dims).
Tensor broadcast_to(const Tensor& t, const Shape& shape, const char* op);
Tensor run_unary(UnaryOp op, const Tensor& x);
// Broadcasts, checks dtypes and devices, allocates the result (u8 for comparisons).
Tensor run_binary(BinaryOp op, const Tensor& a, const Tensor& b);
// Refuses in-place updates that could invalidate a recorded graph.
void check_inplace(const char* op, const Tensor& self);

}  // namespace ds::detail
