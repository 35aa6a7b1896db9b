#pragma once
// The module tree. A module owns named parameters (trainable tensors), named buffers (state
// such as BatchNorm's running statistics) and named children; the dotted names of the whole
// tree ("layer1.0.conv1.weight", "bn1.running_mean") are exactly PyTorch's, so state dicts map
// one to one onto PyTorch checkpoints.
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.hpp"

namespace ds::nn {

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

class Module;
struct LayerSummary;
using ModulePtr = std::shared_ptr<Module>;

struct NamedModule {
  std::string name;
  ModulePtr module;
};

class Module : public std::enable_shared_from_this<Module> {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Single-input forward; containers and models override it.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input);

  const std::string& type_name() const { return type_name_; }
  // One line describing the configuration, as PyTorch's extra_repr ("784, 512, bias=true").
  virtual std::string describe() const { return ""; }
  // Multiply-accumulates of one forward pass producing `output` from `input` (this module
  // alone, children excluded).
  virtual std::int64_t macs(const Shape& input, const Shape& output) const;
  // Lets a layer say how its weights are held (shift layers fill kind, bits, stored size).
  virtual void annotate(LayerSummary&) const {}

  // ---- the tree (dotted names, depth first in registration order, as PyTorch)
  std::vector<NamedTensor> named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<NamedTensor> named_buffers(bool recurse = true) const;
  std::vector<NamedModule> named_children() const;
  std::vector<NamedModule> named_modules() const;  // this module first, named ""
  ModulePtr child(const std::string& name) const;
  // Replaces the child `name` in place (shift conversion swaps layers this way).
  void replace_child(const std::string& name, ModulePtr replacement);
  // Calls visit(parent, child name, child) for every module below this one, children before
  // the deeper levels are entered; visit may replace the child through replace_child.
  void visit_children(const std::function<void(Module& parent, const std::string& name,
                                               const ModulePtr& child)>& visit);

  // ---- state
  void train(bool training = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Parameters then buffers of each module, parents before children, as PyTorch's state_dict.
  std::vector<NamedTensor> state_dict() const;
  // All or nothing: every key must exist with the same shape and dtype, and no key may be
  // missing, or nothing is changed and ds::Error names the key (and `source`, e.g. a file).
  void load_state_dict(const std::vector<NamedTensor>& state,
                       const std::string& source = "state dict");
  void to(Device device);

 protected:
  // What operator() does with forward's output: notes the call in a summary being recorded.
  // A layer's other entry points (BatchNorm::add_relu) pass their outputs through it too.
  Tensor noted(const Shape& input, Tensor output) const;
  Tensor register_parameter(const std::string& name, Tensor tensor);
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, ModulePtr module);
  void collect(const std::string& prefix, bool parameters, bool buffers, bool recurse,
               std::vector<NamedTensor>& out) const;
  void collect_modules(const std::string& prefix, std::vector<NamedModule>& out) const;

  std::string type_name_;
  bool training_ = true;
  std::vector<NamedTensor> parameters_;
  std::vector<NamedTensor> buffers_;
  std::vector<NamedModule> children_;
};

// Creates a module and returns it as the shared pointer the tree stores.
template <typename M, typename... Args>
std::shared_ptr<M> make(Args&&... args) {
  return std::make_shared<M>(std::forward<Args>(args)...);
}

}  // namespace ds::nn
