// Matrix products. 1-D operands become a row or a column and the extra dim is removed again;
// 2-D and 3-D operands are viewed as batches ([B, n, k] @ [B, k, m]) with a broadcast batch
// given stride 0, so the backend never copies to broadcast.
#include <algorithm>

#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

namespace {

Tensor as_batch(const Tensor& t, std::int64_t batches) {
  if (t.dim() == 3)
    return t.shape()[0] == batches
               ? t
               : detail::broadcast_to(t, {batches, t.shape()[1], t.shape()[2]}, "matmul");
  return detail::raw_view(t, {batches, t.shape()[0], t.shape()[1]},
                          {0, t.strides()[0], t.strides()[1]}, t.offset());
}

// 2-D or 3-D operands with matching inner dims.
Tensor matmul_batched(const Tensor& a, const Tensor& b) {
  const std::int64_t k = a.shape().back();
  if (b.shape()[b.dim() - 2] != k)
    fail("matmul: shapes ", a.shape(), " and ", b.shape(), " do not match (", k, " vs ",
         b.shape()[b.dim() - 2], ")");
  const std::int64_t n = a.shape()[a.dim() - 2], m = b.shape().back();
  Shape batch_shape;
  if (a.dim() == 3 || b.dim() == 3) {
    const std::int64_t ba = a.dim() == 3 ? a.shape()[0] : 1;
    const std::int64_t bb = b.dim() == 3 ? b.shape()[0] : 1;
    if (ba != bb && ba != 1 && bb != 1)
      fail("matmul: batch dims of ", a.shape(), " and ", b.shape(), " do not broadcast");
    batch_shape = {std::max(ba, bb)};
  }
  const std::int64_t batches = batch_shape.empty() ? 1 : batch_shape[0];
  Tensor out = Tensor::empty({batches, n, m}, a.dtype(), a.device());
  backend_for(a.device()).matmul(as_batch(a, batches), as_batch(b, batches), out);
  Shape out_shape = batch_shape;
  out_shape.push_back(n);
  out_shape.push_back(m);
  return out.reshape(out_shape);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_same_dtype("matmul", a, b);
  detail::check_same_device("matmul", a, b);
  if (!is_floating(a.dtype())) fail("matmul: needs floating-point tensors, got ", describe(a));
  if (a.dim() == 0 || b.dim() == 0 || a.dim() > 3 || b.dim() > 3)
    fail("matmul: operands must have 1 to 3 dims, got ", a.shape(), " and ", b.shape());
  // Vectors go through the matrix path as a row / a column, recorded as views.
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(b.dim() == 1 ? -1 : -2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);

  return autograd::record(
      "matmul", matmul_batched(a, b), {a, b},
      [sa = autograd::SavedTensor(a), sb = autograd::SavedTensor(b)](
          const Tensor& g, const std::vector<bool>& needs) {
        const Tensor& x = sa.get("matmul");
        const Tensor& y = sb.get("matmul");
        return std::vector<Tensor>{
            needs[0] ? sum_to(matmul_batched(g, y.transpose(-1, -2)), x.shape()) : Tensor(),
            needs[1] ? sum_to(matmul_batched(x.transpose(-1, -2), g), y.shape()) : Tensor()};
      });
}

}  // namespace ds
