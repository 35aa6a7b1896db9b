// Negative log-likelihood and cross-entropy. The labels are validated first so that a label
// outside [0, C) is reported with its position instead of reading a wrong class.
#include "nn/functional.hpp"
#include "tensor/ops.hpp"

namespace ds::nn::functional {

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, Reduction reduction) {
  if (log_probs.dim() != 2)
    fail("nll_loss: expects log-probabilities [N, C], got ", log_probs.shape());
  const std::int64_t n = log_probs.shape()[0], classes = log_probs.shape()[1];
  if (target.dtype() != DType::i32 || target.shape() != Shape{n})
    fail("nll_loss: target must be i32 of shape [", n, "], got ", describe(target));
  const auto labels = target.to_vector<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      fail("nll_loss: label ", labels[i], " at position ", i, " is outside [0, ", classes, ")");
  const Tensor classes_row = Tensor::arange(0, static_cast<double>(classes), 1, DType::i32)
                                 .reshape({1, classes})
                                 .to(target.device());
  const Tensor chosen = eq(classes_row, target.reshape({n, 1}));
  const Tensor picked =
      sum(where(chosen, log_probs, Tensor::scalar(0, log_probs.dtype(), log_probs.device())), {1});
  return reduction == Reduction::mean ? -mean(picked) : -sum(picked);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  return nll_loss(log_softmax(logits, 1), target, reduction);
}

}  // namespace ds::nn::functional
