#include "autograd/function.hpp"

#include "autograd/node.hpp"

namespace ds::autograd {

namespace {

class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, BackwardFn backward, std::vector<bool> needs_grad)
      : Node(name), backward_(std::move(backward)), needs_grad_(std::move(needs_grad)) {}

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    if (!backward_)
      fail(name(),
           ": backward through a graph that was already freed; call backward(grad, "
           "/*retain_graph=*/true) the first time to go through it again");
    std::vector<Tensor> grads = backward_(grad_output, needs_grad_);
    if (grads.size() != next().size())
      fail(name(), ": backward returned ", grads.size(), " gradients for ", next().size(),
           " inputs");
    return grads;
  }

  void release() override { backward_ = nullptr; }

 private:
  BackwardFn backward_;
  std::vector<bool> needs_grad_;
};

}  // namespace

Tensor record(const char* name, Tensor result, const std::vector<Tensor>& inputs,
              BackwardFn backward) {
  if (!GradMode::enabled()) return result;
  std::vector<bool> needs_grad(inputs.size());
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    needs_grad[i] = inputs[i].defined() && inputs[i].requires_grad();
    any = any || needs_grad[i];
  }
  if (!any) return result;
  if (!is_floating(result.dtype())) return result;  // integer results carry no gradient

  auto node = std::make_shared<FunctionNode>(name, std::move(backward), needs_grad);
  node->next().reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    node->next().push_back(needs_grad[i] ? gradient_edge(inputs[i]) : nullptr);
  // A forward that returned one of its inputs unchanged gets a new handle, so that the input
  // keeps its own grad_fn.
  for (const Tensor& input : inputs)
    if (result.is_same(input)) result = result.detach();
  result.impl().grad_fn = std::move(node);
  result.impl().requires_grad = true;
  return result;
}

// Saved detached: the closure must not own the graph (an op saving its own output would
// otherwise form a reference cycle through grad_fn).
SavedTensor::SavedTensor(const Tensor& tensor)
    : tensor_(tensor.defined() ? tensor.detach() : tensor),
      version_(tensor.defined() ? tensor.storage().version() : 0) {}

const Tensor& SavedTensor::get(const char* op) const {
  if (tensor_.defined() && tensor_.storage().version() != version_)
    fail(op,
         ": a tensor saved for the backward pass was modified in place after the forward pass "
         "(saved at version ",
         version_, ", now ", tensor_.storage().version(),
         "); clone it before modifying, or modify it after backward");
  return tensor_;
}

}  // namespace ds::autograd
