#pragma once
// A node of the backward graph. Results of recorded ops point at the node that produced them
// (grad_fn); a node points at the nodes of its inputs (next). Leaves that require grad are
// reached through an accumulator node that sums into their .grad. The graph holds nodes, not
// tensors: only what a backward closure captured stays alive.
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace ds::autograd {

class Node {
 public:
  explicit Node(std::string name) : name_(std::move(name)) {}
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradients for each entry of next(), given the gradient of this node's output. Entries
  // whose edge is null may be left undefined.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops what backward captured, after a backward pass without retain_graph.
  virtual void release() {}

  const std::string& name() const { return name_; }
  std::vector<std::shared_ptr<Node>>& next() { return next_; }
  const std::vector<std::shared_ptr<Node>>& next() const { return next_; }

 private:
  std::string name_;
  std::vector<std::shared_ptr<Node>> next_;
};

// The edge through which gradient flows into `tensor`: its grad_fn, its leaf accumulator, or
// null when it does not require grad.
std::shared_ptr<Node> gradient_edge(const Tensor& tensor);

// Runs the backward pass from `roots` (each seeded with its gradient) in topological order.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads,
                  bool retain_graph);

}  // namespace ds::autograd
