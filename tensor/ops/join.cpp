// cat and stack: the result is allocated once and each input copied into its slice; the
// gradient of each input is the matching slice of the output gradient.
#include "tensor/ops.hpp"
#include "tensor/ops/kernel_calls.hpp"

namespace ds {

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) fail("cat: needs at least one tensor");
  const Tensor& first = tensors[0];
  const int d = normalize_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[d] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_same_dtype("cat", first, t);
    detail::check_same_device("cat", first, t);
    bool fits = t.dim() == first.dim();
    for (std::size_t k = 0; fits && k < t.dim(); ++k)
      fits = static_cast<int>(k) == d || t.shape()[k] == first.shape()[k];
    if (!fits)
      fail("cat: tensor ", i, " of shape ", t.shape(), " does not match shape ", first.shape(),
           " outside dim ", dim);
    shape[d] += t.shape()[d];
  }
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  std::vector<std::int64_t> sizes;
  std::int64_t start = 0;
  for (const Tensor& t : tensors) {
    const Tensor part = out.detach().narrow(d, start, t.shape()[d]);
    backend_for(out.device()).copy(t, part);
    sizes.push_back(t.shape()[d]);
    start += t.shape()[d];
  }
  return autograd::record("cat", out, tensors,
                          [sizes, d](const Tensor& g, const std::vector<bool>& needs) {
                            std::vector<Tensor> grads(sizes.size());
                            std::int64_t offset = 0;
                            for (std::size_t i = 0; i < sizes.size(); ++i) {
                              if (needs[i]) grads[i] = g.narrow(d, offset, sizes[i]);
                              offset += sizes[i];
                            }
                            return grads;
                          });
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  if (tensors.empty()) fail("stack: needs at least one tensor");
  const int d = normalize_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape())
      fail("stack: tensor ", i, " has shape ", tensors[i].shape(), ", tensor 0 has ",
           tensors[0].shape());
    expanded.push_back(tensors[i].unsqueeze(d));
  }
  return cat(expanded, d);
}

}  // namespace ds
