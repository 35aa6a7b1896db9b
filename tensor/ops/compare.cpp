// Comparisons (u8 masks, not differentiable) and where (differentiable in both branches).
#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

using detail::run_binary;

Tensor eq(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return run_binary(BinaryOp::ge, a, b); }

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  if (condition.dtype() != DType::u8)
    fail("where: the condition must be a u8 mask (as comparisons return), got ",
         describe(condition));
  detail::check_same_dtype("where", a, b);
  detail::check_same_device("where", a, b);
  detail::check_same_device("where", condition, a);
  const Shape shape =
      broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  backend_for(a.device())
      .where(detail::broadcast_to(condition, shape, "where"),
             detail::broadcast_to(a, shape, "where"), detail::broadcast_to(b, shape, "where"), out);
  return autograd::record("where", out, {a, b},
                          [mask = autograd::SavedTensor(condition), sa = a.shape(), sb = b.shape()](
                              const Tensor& g, const std::vector<bool>& needs) {
                            const Tensor& c = mask.get("where");
                            const Tensor zero = detail::scalar_like(0, g);
                            return std::vector<Tensor>{
                                needs[0] ? sum_to(where(c, g, zero), sa) : Tensor(),
                                needs[1] ? sum_to(where(c, zero, g), sb) : Tensor()};
                          });
}

}  // namespace ds
