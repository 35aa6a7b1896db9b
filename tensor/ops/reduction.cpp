// sum, mean, max, min, argmax, argmin, var and sum_to. The reduced dims are moved to the end
// so that the backend reduces rows; gradients are broadcast back over the reduced dims.
#include <algorithm>

#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

using autograd::record;
using autograd::SavedTensor;
using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

namespace {

struct ReducePlan {
  std::vector<bool> reduced;        // per input dim
  Shape out_shape;                  // without the reduced dims
  Shape keepdim_shape;              // reduced dims kept as size 1
  std::vector<std::int64_t> order;  // kept dims first, reduced dims last
  int reduced_count = 0;
  std::int64_t reduced_numel = 1;
};

ReducePlan plan_reduction(const Tensor& x, const std::vector<std::int64_t>& dims, const char* op) {
  ReducePlan plan;
  plan.reduced.assign(x.dim(), dims.empty());
  for (auto d : dims) {
    const int nd = normalize_dim(d, x.dim(), op);
    if (plan.reduced[nd]) fail(op, ": dim ", d, " is listed twice");
    plan.reduced[nd] = true;
  }
  for (std::size_t d = 0; d < x.dim(); ++d) {
    if (plan.reduced[d]) {
      plan.keepdim_shape.push_back(1);
      plan.reduced_numel *= x.shape()[d];
      ++plan.reduced_count;
    } else {
      plan.keepdim_shape.push_back(x.shape()[d]);
      plan.out_shape.push_back(x.shape()[d]);
      plan.order.push_back(static_cast<std::int64_t>(d));
    }
  }
  for (std::size_t d = 0; d < x.dim(); ++d)
    if (plan.reduced[d]) plan.order.push_back(static_cast<std::int64_t>(d));
  return plan;
}

Tensor run_reduce(ReduceOp op, const Tensor& x, const ReducePlan& plan) {
  if (plan.reduced_numel == 0 && op != ReduceOp::sum)
    fail(op_name(op), ": cannot reduce over an empty dimension (input ", x.shape(), ")");
  const Tensor moved = x.detach().permute(plan.order);
  Tensor out = Tensor::empty(
      plan.out_shape, op == ReduceOp::argmax || op == ReduceOp::argmin ? DType::i32 : x.dtype(),
      x.device());
  backend_for(x.device()).reduce(op, moved, plan.reduced_count, out);
  return out;
}

Tensor finish_shape(const Tensor& out, const ReducePlan& plan, bool keepdim) {
  return keepdim ? out.reshape(plan.keepdim_shape) : out;
}

Tensor extreme(ReduceOp op, const char* name, const Tensor& x,
               const std::vector<std::int64_t>& dims, bool keepdim) {
  const ReducePlan plan = plan_reduction(x, dims, name);
  Tensor out = run_reduce(op, x, plan);
  Tensor result = record(name, out, {x},
                         [sx = SavedTensor(x), so = SavedTensor(out), shape = plan.keepdim_shape,
                          dims, name](const Tensor& g, const Needs&) {
                           const Tensor& input = sx.get(name);
                           // Ties share the gradient equally, as torch.amax/amin do.
                           const Tensor hit = eq(input, so.get(name).reshape(shape)).to(g.dtype());
                           const Tensor share = hit / sum(hit, dims, /*keepdim=*/true);
                           return Grads{g.reshape(shape) * share};
                         });
  return finish_shape(result, plan, keepdim);
}

Tensor index_of_extreme(ReduceOp op, const char* name, const Tensor& x,
                        std::optional<std::int64_t> dim, bool keepdim) {
  if (!dim) {
    const Tensor flat = x.detach().reshape({x.numel()});
    const Tensor index = run_reduce(op, flat, plan_reduction(flat, {}, name));
    return keepdim ? index.reshape(Shape(x.dim(), 1)) : index;
  }
  const ReducePlan plan = plan_reduction(x, {*dim}, name);
  return finish_shape(run_reduce(op, x, plan), plan, keepdim);
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  // Integer sums (mask counts above all) are returned as i32 so that they cannot wrap at 256.
  if (!is_floating(x.dtype()) && x.dtype() != DType::i32)
    return sum(x.to(DType::i32), dims, keepdim);
  const ReducePlan plan = plan_reduction(x, dims, "sum");
  Tensor out =
      record("sum", run_reduce(ReduceOp::sum, x, plan), {x},
             [shape = plan.keepdim_shape, full = x.shape()](const Tensor& g, const Needs&) {
               return Grads{g.reshape(shape).expand(full)};
             });
  return finish_shape(out, plan, keepdim);
}

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  if (!is_floating(x.dtype())) fail("mean: needs a floating-point tensor, got ", describe(x));
  const ReducePlan plan = plan_reduction(x, dims, "mean");
  return sum(x, dims, keepdim) / static_cast<double>(plan.reduced_numel);
}

Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return extreme(ReduceOp::max, "max", x, dims, keepdim);
}

Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return extreme(ReduceOp::min, "min", x, dims, keepdim);
}

Tensor argmax(const Tensor& x, std::optional<std::int64_t> dim, bool keepdim) {
  return index_of_extreme(ReduceOp::argmax, "argmax", x, dim, keepdim);
}

Tensor argmin(const Tensor& x, std::optional<std::int64_t> dim, bool keepdim) {
  return index_of_extreme(ReduceOp::argmin, "argmin", x, dim, keepdim);
}

Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim,
           std::int64_t correction) {
  if (!is_floating(x.dtype())) fail("var: needs a floating-point tensor, got ", describe(x));
  const ReducePlan plan = plan_reduction(x, dims, "var");
  const Tensor centred = x - mean(x, dims, /*keepdim=*/true);
  const double divisor =
      static_cast<double>(std::max<std::int64_t>(plan.reduced_numel - correction, 0));
  return sum(centred * centred, dims, keepdim) / divisor;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  if (x.dim() < shape.size()) fail("sum_to: cannot reduce shape ", x.shape(), " to ", shape);
  const std::size_t lead = x.dim() - shape.size();
  std::vector<std::int64_t> dims;
  for (std::size_t d = 0; d < x.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1))
      dims.push_back(static_cast<std::int64_t>(d));
  if (dims.empty()) return x.reshape(shape);
  return sum(x, dims, /*keepdim=*/true).reshape(shape);
}

}  // namespace ds
