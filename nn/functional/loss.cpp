// Negative log-likelihood and cross-entropy. The labels are validated first so that a label
// outside [0, C) is reported with its position instead of reading a wrong class.
#include <vector>

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
  // The loss is a weighted sum of the log-probabilities with one non-zero weight per row (at
  // the label): two ops whose backward is a single product, instead of a mask built per class.
  const double scale = reduction == Reduction::mean ? -1.0 / static_cast<double>(n) : -1.0;
  std::vector<double> weights(static_cast<std::size_t>(n * classes), 0.0);
  for (std::int64_t i = 0; i < n; ++i) weights[i * classes + labels[i]] = scale;
  const Tensor weight =
      Tensor::from_vector(weights, {n, classes}).to(log_probs.dtype()).to(log_probs.device());
  return sum(log_probs * weight);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  return nll_loss(log_softmax(logits, 1), target, reduction);
}

}  // namespace ds::nn::functional
