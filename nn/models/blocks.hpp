#pragma once
// Pieces shared by the model definitions: a Sequential with named children, a convolution
// shorthand and the weight initialisations the reference definitions apply after
// construction. Internal to nn/models (not installed).
#include <cstdint>
#include <memory>
#include <string>

#include "nn/init.hpp"
#include "nn/layers.hpp"

namespace ds::nn::models::detail {

// The base of every model and block here. Forward passes look their children up by name on
// each call, never through cached pointers, so that a child swapped by replace_child (shift
// conversion) is the one that runs.
class Composite : public Module {
 public:
  using Module::Module;
  template <typename M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> module) {
    return register_module(name, std::move(module));
  }

 protected:
  Tensor call(const std::string& name, const Tensor& input) const { return (*child(name))(input); }
  // relu(call(name, input) + residual): a residual block's ending, in one pass when the child
  // is a batch norm (BatchNorm::add_relu).
  Tensor call_add_relu(const std::string& name, const Tensor& input, const Tensor& residual) const;
};

// PyTorch's Sequential(OrderedDict(...)): children applied in order under their own names
// (torchvision's DenseNet "features.conv0", "features.denseblock1", ...).
class NamedSequential : public Composite {
 public:
  NamedSequential() : Composite("Sequential") {}
  Tensor forward(const Tensor& input) override;
};

// A square convolution; no bias unless asked, as every batch-normalised model here.
std::shared_ptr<Conv2d> conv(std::int64_t in, std::int64_t out, std::int64_t kernel,
                             std::int64_t stride = 1, std::int64_t padding = 0, bool bias = false,
                             std::int64_t groups = 1);

// Re-initialisers over every matching module of a tree, as the reference models' init loops.
// Each keeps biases it does not mention as the layer's own init left them.
void kaiming_normal_convs(Module& root, init::FanMode mode, bool zero_bias);
void kaiming_normal_linears(Module& root);
void normal_convs_and_linears(Module& root, double stddev);
void normal_linears(Module& root, double stddev, bool zero_bias);
void zero_linear_biases(Module& root);
void fill_batchnorms(Module& root, double weight, double bias);

}  // namespace ds::nn::models::detail
