// The backward pass: a topological walk over the graph of nodes reachable from the roots,
// summing the gradients that reach each node before running it (so a tensor used twice gets
// the sum of both contributions), and accumulating into the leaves' .grad.
#include <unordered_map>

#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"
#include "tensor/ops.hpp"

namespace ds::autograd {

namespace {

// A dense tensor that is the only one referring to its memory, held only by the caller: the
// engine's buffer slot, moved out before the node runs.
bool owned_by_nobody_else(const Tensor& grad) {
  return grad.impl_ptr().use_count() == 1 && grad.storage().sole_owner() && grad.offset() == 0 &&
         grad.is_contiguous() &&
         grad.storage().nbytes() ==
             static_cast<std::size_t>(grad.numel()) * dtype_size(grad.dtype());
}

class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
      : Node("AccumulateGrad"), leaf_(leaf) {}

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    auto leaf = leaf_.lock();
    if (!leaf) return {};  // the leaf is gone; nobody can read its gradient
    if (grad_output.shape() != leaf->shape)
      fail("AccumulateGrad: gradient of shape ", grad_output.shape(), " for a leaf of shape ",
           leaf->shape);
    if (leaf->grad) {
      // In place, as PyTorch does: .grad is private to the leaf (created below), and a fresh
      // sum would cost an allocation and a pass more on every parameter every step.
      Tensor(leaf->grad).add_(grad_output);
    } else if (owned_by_nobody_else(grad_output)) {
      // Taken as it is (as PyTorch does): a gradient that nothing else can see may become .grad
      // without a copy, which with zero_grad(set_to_none) saves a zero fill and an add per step.
      leaf->grad = grad_output.impl_ptr();
    } else {
      // A private copy: the incoming gradient may alias another tensor, and optimizers and
      // zero_grad update .grad in place.
      leaf->grad = grad_output.contiguous().clone().impl_ptr();
    }
    return {};
  }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

}  // namespace

std::shared_ptr<Node> gradient_edge(const Tensor& tensor) {
  if (!tensor.defined() || !tensor.requires_grad()) return nullptr;
  TensorImpl& impl = tensor.impl();
  if (impl.grad_fn) return impl.grad_fn;
  if (auto existing = impl.grad_accumulator.lock()) return existing;
  auto accumulator = std::make_shared<AccumulateGrad>(tensor.impl_ptr());
  impl.grad_accumulator = accumulator;
  return accumulator;
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph) {
  NoGradGuard no_grad;
  // Count, for every reachable node, how many edges point at it.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack;
  std::unordered_map<Node*, Tensor> buffer;
  std::vector<std::shared_ptr<Node>> keep_alive;  // roots' nodes while we run
  for (std::size_t i = 0; i < roots.size(); ++i) {
    auto node = gradient_edge(roots[i]);
    if (!node)
      fail("backward: tensor ", describe(roots[i]),
           " does not require grad (no input of its computation requires grad)");
    keep_alive.push_back(node);
    auto& slot = buffer[node.get()];
    slot = slot.defined() ? add(slot, grads[i]) : grads[i];
    if (pending.emplace(node.get(), 0).second) stack.push_back(node.get());
  }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& next : node->next()) {
      if (!next) continue;
      if (pending.emplace(next.get(), 1).second)
        stack.push_back(next.get());
      else
        ++pending[next.get()];
    }
  }
  // Kahn's algorithm: a node runs once every edge into it has delivered its gradient.
  std::vector<Node*> ready;
  for (const auto& root : keep_alive)
    if (pending[root.get()] == 0) ready.push_back(root.get());
  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    if (pending[node] < 0) continue;  // already ran (a root reached twice)
    pending[node] = -1;
    // A node that no gradient reached still runs its bookkeeping, so that the nodes below it
    // see every edge delivered.
    std::vector<Tensor> input_grads;
    if (auto found = buffer.find(node); found != buffer.end()) {
      Tensor grad = std::move(found->second);
      buffer.erase(found);
      input_grads = node->apply(grad);
    }
    const auto edges = node->next();  // copied: release() below may clear them
    if (!retain_graph) node->release();
    for (std::size_t i = 0; i < edges.size(); ++i) {
      Node* next = edges[i].get();
      if (!next) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        auto& slot = buffer[next];
        slot = slot.defined() ? add(slot, input_grads[i]) : input_grads[i];
      }
      if (--pending[next] == 0) ready.push_back(next);
    }
  }
}

}  // namespace ds::autograd

namespace ds {

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  Tensor seed = gradient;
  if (!seed.defined()) {
    if (numel() != 1)
      fail("backward: the tensor has shape ", shape(),
           "; pass a gradient of the same shape for a non-scalar output");
    seed = Tensor::ones(shape(), dtype(), device());
  } else if (seed.shape() != shape()) {
    fail("backward: gradient of shape ", seed.shape(), " for a tensor of shape ", shape());
  }
  autograd::run_backward({*this}, {seed}, retain_graph);
}

}  // namespace ds
