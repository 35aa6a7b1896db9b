// Compares every op of nn/functional.hpp, and the layer built on it, with PyTorch: forward
// values, the gradients of the input, weight and bias for a fixed upstream gradient, and batch
// norm's updated running statistics. Functional ops run in f64 (tight) and f32; layers, whose
// parameters are f32, run in f32 with the fixture's weights loaded through load_state_dict.
// The fixtures and the layout of each case's `config` come from golden/generate_nn.py.
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nn/functional.hpp"
#include "nn/layers.hpp"
#include "support/golden.hpp"
#include "tensor/ops.hpp"

namespace {

using ds::DType;
using ds::Tensor;
namespace F = ds::nn::functional;
namespace nn = ds::nn;

// f32 tolerances must match F32_RTOL/F32_ATOL in generate_nn.py, which checks that torch's own
// f32 results meet them.
constexpr double kF64Rtol = 1e-9;
constexpr double kF64Atol = 1e-11;
constexpr double kF32Rtol = 1e-4;
constexpr double kF32Atol = 1e-5;
constexpr double kBnMomentum = 0.1;
constexpr double kBnEps = 1e-5;

const ds::test::GoldenFile& golden() {
  static const ds::test::GoldenFile file(DS_NN_GOLDEN_DIR "/nn_ops.golden");
  return file;
}

// A case's inputs in the dtype under test; x, weight and bias require grad.
struct CaseInputs {
  std::vector<std::int64_t> config;
  std::map<std::string, Tensor> tensors;

  const Tensor& get(const std::string& name) const {
    static const Tensor undefined;
    const auto found = tensors.find(name);
    return found == tensors.end() ? undefined : found->second;
  }
  bool flag(std::size_t index) const { return config.at(index) != 0; }
};

CaseInputs load_inputs(const std::string& name, DType dtype) {
  const auto& file = golden();
  CaseInputs inputs;
  if (file.contains(name + "/config"))
    for (const double v : ds::test::values_of(file.get(name + "/config")))
      inputs.config.push_back(static_cast<std::int64_t>(v));
  for (const char* key : {"x", "weight", "bias", "running_mean", "running_var", "target"}) {
    if (!file.contains(name + "/" + key)) continue;
    Tensor t = file.get(name + "/" + key);
    if (ds::is_floating(t.dtype())) t = t.to(dtype);
    const std::string k = key;
    if (k == "x" || k == "weight" || k == "bias") t.requires_grad_();
    inputs.tensors[k] = t;
  }
  return inputs;
}

// What one run produced: the output, the tensors whose .grad is compared with grad_<name>, and
// further results compared with the fixture key of the same name.
struct Outcome {
  Tensor out;
  std::map<std::string, Tensor> leaves;
  std::map<std::string, Tensor> extras;
};

ds::Window window_of(const std::vector<std::int64_t>& c) {
  return ds::Window{c.at(0), c.at(1), c.at(2), c.at(3), c.at(4), c.at(5)};
}

F::Conv2dParams conv_params_of(const std::vector<std::int64_t>& c) {
  return F::Conv2dParams{c.at(0), c.at(1), c.at(2), c.at(3), c.at(4), c.at(5), c.at(6)};
}

F::Reduction reduction_of(const CaseInputs& in) {
  return in.flag(0) ? F::Reduction::sum : F::Reduction::mean;
}

nn::Conv2dOptions conv_options_of(const CaseInputs& in) {
  const auto& w = in.get("weight").shape();
  const auto& c = in.config;
  return nn::Conv2dOptions{.in_channels = in.get("x").shape()[1],
                           .out_channels = w[0],
                           .kernel_h = w[2],
                           .kernel_w = w[3],
                           .stride_h = c.at(0),
                           .stride_w = c.at(1),
                           .pad_h = c.at(2),
                           .pad_w = c.at(3),
                           .dilation_h = c.at(4),
                           .dilation_w = c.at(5),
                           .groups = c.at(6),
                           .bias = in.get("bias").defined()};
}

bool square_window(const std::vector<std::int64_t>& c) {
  return c.at(0) == c.at(1) && c.at(2) == c.at(3) && c.at(4) == c.at(5);
}

using FunctionalOp = std::function<Tensor(const CaseInputs&)>;
// The layer computing the case, or null when the layer cannot express its configuration.
using LayerFactory = std::function<nn::ModulePtr(const CaseInputs&)>;

struct OpEntry {
  std::string prefix;  // the case names it computes start with this
  FunctionalOp functional;
  LayerFactory layer;  // empty for ops without a layer (the losses)
};

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> table{
      {"linear_",
       [](const CaseInputs& in) {
         return F::linear(in.get("x"), in.get("weight"), in.get("bias"));
       },
       [](const CaseInputs& in) -> nn::ModulePtr {
         const auto& w = in.get("weight").shape();
         return nn::make<nn::Linear>(w[1], w[0], in.get("bias").defined());
       }},
      {"conv2d_",
       [](const CaseInputs& in) {
         return F::conv2d(in.get("x"), in.get("weight"), in.get("bias"), conv_params_of(in.config));
       },
       [](const CaseInputs& in) -> nn::ModulePtr {
         return nn::make<nn::Conv2d>(conv_options_of(in));
       }},
      {"max_pool2d_",
       [](const CaseInputs& in) {
         return F::max_pool2d(in.get("x"), window_of(in.config), in.flag(6));
       },
       [](const CaseInputs& in) -> nn::ModulePtr {
         const auto& c = in.config;
         if (!square_window(c)) return nullptr;
         return nn::make<nn::MaxPool2d>(c[0], c[2], c[4], in.flag(6));
       }},
      {"avg_pool2d_",
       [](const CaseInputs& in) { return F::avg_pool2d(in.get("x"), window_of(in.config)); },
       [](const CaseInputs& in) -> nn::ModulePtr {
         const auto& c = in.config;
         if (!square_window(c)) return nullptr;
         return nn::make<nn::AvgPool2d>(c[0], c[2], c[4]);
       }},
      {"adaptive_avg_pool2d_",
       [](const CaseInputs& in) {
         return F::adaptive_avg_pool2d(in.get("x"), in.config.at(0), in.config.at(1));
       },
       [](const CaseInputs& in) -> nn::ModulePtr {
         return nn::make<nn::AdaptiveAvgPool2d>(in.config.at(0), in.config.at(1));
       }},
      {"batch_norm_",
       [](const CaseInputs& in) {
         return F::batch_norm(in.get("x"), in.get("running_mean"), in.get("running_var"),
                              in.get("weight"), in.get("bias"), in.flag(0), kBnMomentum, kBnEps);
       },
       [](const CaseInputs& in) -> nn::ModulePtr {
         const auto features = in.get("x").shape()[1];
         return in.get("x").dim() == 2 ? nn::ModulePtr(nn::batch_norm1d(features))
                                       : nn::ModulePtr(nn::batch_norm2d(features));
       }},
      {"relu6", [](const CaseInputs& in) { return F::relu6(in.get("x")); },
       [](const CaseInputs&) -> nn::ModulePtr { return nn::make<nn::ReLU6>(); }},
      {"log_softmax_",
       [](const CaseInputs& in) { return ds::log_softmax(in.get("x"), in.config.at(0)); },
       [](const CaseInputs& in) -> nn::ModulePtr {
         return nn::make<nn::LogSoftmax>(in.config.at(0));
       }},
      {"nll_loss_",
       [](const CaseInputs& in) {
         return F::nll_loss(in.get("x"), in.get("target"), reduction_of(in));
       },
       {}},
      {"cross_entropy_",
       [](const CaseInputs& in) {
         return F::cross_entropy(in.get("x"), in.get("target"), reduction_of(in));
       },
       {}},
  };
  return table;
}

const OpEntry* entry_for(const std::string& case_name) {
  for (const auto& entry : op_table())
    if (case_name.rfind(entry.prefix, 0) == 0) return &entry;
  return nullptr;
}

Outcome run_functional(const OpEntry& entry, const std::string& name, DType dtype) {
  CaseInputs in = load_inputs(name, dtype);
  Outcome outcome;
  // batch_norm updates the running statistics in place: they are results too.
  if (in.get("running_mean").defined()) {
    outcome.extras["running_mean_after"] = in.get("running_mean");
    outcome.extras["running_var_after"] = in.get("running_var");
  }
  outcome.out = entry.functional(in);
  for (const char* key : {"x", "weight", "bias"})
    if (in.get(key).defined()) outcome.leaves[key] = in.get(key);
  return outcome;
}

// Builds the layer, loads the fixture's weights and statistics into it by state-dict name
// (keeping its own value for keys the fixture lacks, such as num_batches_tracked) and runs it.
Outcome run_layer(const nn::ModulePtr& layer, const std::string& name) {
  CaseInputs in = load_inputs(name, DType::f32);
  std::vector<nn::NamedTensor> state;
  for (const auto& own : layer->state_dict()) {
    const Tensor& given = in.get(own.name);
    state.push_back({own.name, given.defined() ? given.detach() : own.tensor.detach().clone()});
  }
  layer->load_state_dict(state, name);
  if (name.rfind("batch_norm_", 0) == 0) layer->train(in.flag(0));

  Outcome outcome;
  outcome.out = (*layer)(in.get("x"));
  outcome.leaves["x"] = in.get("x");
  for (const auto& p : layer->named_parameters()) outcome.leaves[p.name] = p.tensor;
  for (const auto& b : layer->named_buffers())
    if (b.name == "running_mean" || b.name == "running_var")
      outcome.extras[b.name + "_after"] = b.tensor;
  return outcome;
}

void check_close(const std::string& what, const Tensor& actual, const Tensor& expected,
                 DType dtype) {
  REQUIRE(actual.defined());
  const bool f64 = dtype == DType::f64;
  const auto result =
      ds::test::allclose(actual, expected, f64 ? kF64Rtol : kF32Rtol, f64 ? kF64Atol : kF32Atol);
  INFO(what << ": " << result.message);
  CHECK(result.ok);
}

// Compares a run with the fixture: the output, every gradient the fixture holds, and the extras.
void check_outcome(const std::string& name, const Outcome& outcome, DType dtype) {
  const auto& file = golden();
  CHECK(outcome.out.dtype() == dtype);
  check_close("forward", outcome.out, file.get(name + "/out"), dtype);
  if (!outcome.extras.count("running_mean_after") && file.contains(name + "/running_mean_after"))
    FAIL("the run did not expose the running statistics");
  for (const auto& [key, tensor] : outcome.extras)
    check_close(key, tensor, file.get(name + "/" + key), dtype);

  outcome.out.backward(file.get(name + "/grad_out").to(dtype));
  for (const char* leaf : {"x", "weight", "bias"}) {
    const std::string key = name + "/grad_" + std::string(leaf);
    const bool expected = file.contains(key);
    const auto found = outcome.leaves.find(leaf);
    CHECK(expected == (found != outcome.leaves.end()));
    if (expected && found != outcome.leaves.end())
      check_close(std::string("gradient of ") + leaf, found->second.grad(), file.get(key), dtype);
  }
}

}  // namespace

TEST_CASE("every nn fixture case has an op and every op has a case", "[nn][golden]") {
  std::map<std::string, int> cases_per_op;
  for (const auto& name : golden().cases()) {
    const OpEntry* entry = entry_for(name);
    INFO("case " << name);
    REQUIRE(entry != nullptr);
    ++cases_per_op[entry->prefix];
  }
  for (const auto& entry : op_table()) {
    INFO("op " << entry.prefix);
    CHECK(cases_per_op[entry.prefix] > 0);
  }
  CHECK(golden().cases().size() >= 35);
}

TEST_CASE("functional nn ops match PyTorch in f64 and f32", "[nn][golden]") {
  for (const auto& name : golden().cases()) {
    const OpEntry* entry = entry_for(name);
    REQUIRE(entry != nullptr);
    for (const DType dtype : {DType::f64, DType::f32}) {
      INFO("golden case " << name << " in " << ds::dtype_name(dtype));
      check_outcome(name, run_functional(*entry, name, dtype), dtype);
    }
  }
}

TEST_CASE("layers with the fixture's weights match PyTorch in f32", "[nn][golden]") {
  int layers_run = 0;
  for (const auto& name : golden().cases()) {
    const OpEntry* entry = entry_for(name);
    REQUIRE(entry != nullptr);
    if (!entry->layer) continue;
    const nn::ModulePtr layer = entry->layer(load_inputs(name, DType::f32));
    if (!layer) continue;
    INFO("golden case " << name << " through " << layer->type_name());
    check_outcome(name, run_layer(layer, name), DType::f32);
    ++layers_run;
  }
  CHECK(layers_run >= 25);
}

TEST_CASE("batch norm layer counts its training batches", "[nn][golden]") {
  const auto bn = nn::batch_norm2d(3);
  const Tensor x = ds::randn({4, 3, 2, 2});
  (*bn)(x);
  (*bn)(x);
  bn->eval();
  (*bn)(x);
  const auto buffers = bn->named_buffers();
  REQUIRE(buffers.size() == 3);
  CHECK(buffers[2].name == "num_batches_tracked");
  CHECK(buffers[2].tensor.dtype() == DType::i32);
  CHECK(buffers[2].tensor.item() == 2.0);
}
