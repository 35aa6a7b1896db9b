// softmax and log_softmax over one dim. The dim is moved last and made contiguous so that the
// backend works on dense rows; the max is subtracted first so exp never overflows.
#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

namespace {

Tensor softmax_family(const Tensor& x, std::int64_t dim, bool log, const char* name) {
  if (!is_floating(x.dtype())) fail(name, ": needs a floating-point tensor, got ", describe(x));
  if (x.dim() == 0) fail(name, ": needs at least one dim");
  const int d = normalize_dim(dim, x.dim(), name);
  const auto last = static_cast<std::int64_t>(x.dim()) - 1;
  const Tensor rows = x.detach().transpose(d, last).contiguous();
  Tensor out = Tensor::empty(rows.shape(), x.dtype(), x.device());
  backend_for(x.device()).softmax(rows, log, out);
  out = out.transpose(d, last);
  return autograd::record(
      name, out, {x},
      [so = autograd::SavedTensor(out), d, log, name](const Tensor& g, const std::vector<bool>&) {
        const Tensor& y = so.get(name);
        if (log) return std::vector<Tensor>{g - exp(y) * sum(g, {d}, /*keepdim=*/true)};
        return std::vector<Tensor>{y * (g - sum(g * y, {d}, /*keepdim=*/true))};
      });
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t dim) {
  return softmax_family(x, dim, false, "softmax");
}
Tensor log_softmax(const Tensor& x, std::int64_t dim) {
  return softmax_family(x, dim, true, "log_softmax");
}

}  // namespace ds
