// The module tree against PyTorch's: parameter, buffer, state-dict and module names and their
// order for the Sequential of golden/generate_nn.py, its outputs in training and eval with the
// same state, and the tree operations (train/eval, replace_child, visit_children,
// load_state_dict's all-or-nothing validation).
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "nn/layers.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using ds::testing::MessageContains;
namespace nn = ds::nn;

// The Sequential that generate_nn.py builds with torch.nn.
std::shared_ptr<nn::Sequential> small_model() {
  using nn::Conv2dOptions;
  auto block = nn::make<nn::Sequential>(std::vector<nn::ModulePtr>{
      nn::make<nn::Conv2d>(Conv2dOptions::square(4, 6, 3, 2, 1)),
      nn::batch_norm2d(6),
      nn::make<nn::ReLU>(),
  });
  return nn::make<nn::Sequential>(std::vector<nn::ModulePtr>{
      nn::make<nn::Conv2d>(Conv2dOptions::square(3, 4, 3, 1, 1, /*bias=*/false)),
      nn::batch_norm2d(4),
      nn::make<nn::ReLU>(),
      block,
      nn::make<nn::AdaptiveAvgPool2d>(1, 1),
      nn::make<nn::Flatten>(),
      nn::make<nn::Linear>(6, 5),
  });
}

// sequential_names.txt: what PyTorch reports for that model.
struct TorchNames {
  std::vector<std::string> parameters, buffers, state, modules, module_types;
  std::int64_t parameter_count = -1;
};

TorchNames torch_names() {
  const std::string path = DS_NN_GOLDEN_DIR "/sequential_names.txt";
  std::ifstream in(path);
  if (!in) ds::fail("cannot open ", path);
  TorchNames names;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind, name, type;
    if (!(words >> kind) || kind[0] == '#') continue;
    if (kind == "parameter_count") {
      words >> names.parameter_count;
      continue;
    }
    words >> name;
    if (kind == "parameter") names.parameters.push_back(name);
    if (kind == "buffer") names.buffers.push_back(name);
    if (kind == "state") names.state.push_back(name);
    if (kind == "module") {
      words >> type;
      names.modules.push_back(name);
      names.module_types.push_back(type);
    }
  }
  return names;
}

template <typename Named>
std::vector<std::string> names_of(const std::vector<Named>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) out.push_back(item.name);
  return out;
}

const ds::test::GoldenFile& sequential_golden() {
  static const ds::test::GoldenFile file(DS_NN_GOLDEN_DIR "/sequential.golden");
  return file;
}

// The fixture's state dict `which` ("before" or "after") with our dtypes (f32, i32 counters).
std::vector<nn::NamedTensor> fixture_state(const nn::Module& model, const std::string& which) {
  std::vector<nn::NamedTensor> state;
  for (const auto& own : model.state_dict())
    state.push_back(
        {own.name,
         sequential_golden().get("sequential/" + which + "." + own.name).to(own.tensor.dtype())});
  return state;
}

void check_close(const std::string& what, const Tensor& actual, const Tensor& expected) {
  const auto result = ds::test::allclose(actual, expected, 1e-4, 1e-4);
  INFO(what << ": " << result.message);
  CHECK(result.ok);
}

// A deep copy of the values of every state entry, to see later whether anything changed.
std::vector<nn::NamedTensor> snapshot(const nn::Module& model) {
  std::vector<nn::NamedTensor> copy;
  for (const auto& e : model.state_dict()) copy.push_back({e.name, e.tensor.detach().clone()});
  return copy;
}

void check_unchanged(const nn::Module& model, const std::vector<nn::NamedTensor>& before) {
  const auto now = model.state_dict();
  REQUIRE(now.size() == before.size());
  for (std::size_t i = 0; i < now.size(); ++i) {
    INFO("state entry " << now[i].name);
    CHECK(ds::test::values_of(now[i].tensor) == ds::test::values_of(before[i].tensor));
  }
}

// A complete, valid state whose every value differs from a fresh model's.
std::vector<nn::NamedTensor> replacement_state(const nn::Module& model) {
  std::vector<nn::NamedTensor> state;
  for (const auto& e : model.state_dict())
    state.push_back({e.name, Tensor::full(e.tensor.shape(), 7.0, e.tensor.dtype())});
  return state;
}

void set_entry(std::vector<nn::NamedTensor>& state, const std::string& name, const Tensor& value) {
  for (auto& e : state)
    if (e.name == name) {
      e.tensor = value;
      return;
    }
  FAIL("no state entry " << name);
}

}  // namespace

TEST_CASE("parameter, buffer, state and module names are PyTorch's, in its order", "[nn][module]") {
  const auto model = small_model();
  const TorchNames torch = torch_names();
  REQUIRE(!torch.parameters.empty());
  CHECK(names_of(model->named_parameters()) == torch.parameters);
  CHECK(names_of(model->named_buffers()) == torch.buffers);
  CHECK(names_of(model->state_dict()) == torch.state);

  const auto modules = model->named_modules();
  REQUIRE(modules.size() == torch.modules.size() + 1);
  CHECK(modules[0].name.empty());
  CHECK(modules[0].module.get() == model.get());
  for (std::size_t i = 0; i < torch.modules.size(); ++i) {
    CHECK(modules[i + 1].name == torch.modules[i]);
    CHECK(modules[i + 1].module->type_name() == torch.module_types[i]);
  }
}

TEST_CASE("parameter counts equal PyTorch's and the hand count", "[nn][module]") {
  const auto model = small_model();
  std::int64_t total = 0;
  for (const auto& p : model->parameters()) total += p.numel();
  // conv 3*4*9; bn 2*4; conv 4*6*9 + 6; bn 2*6; linear 6*5 + 5.
  CHECK(total == 108 + 8 + 222 + 12 + 35);
  CHECK(total == torch_names().parameter_count);
  for (const auto& p : model->parameters()) CHECK(p.requires_grad());
  for (const auto& b : model->named_buffers()) CHECK_FALSE(b.tensor.requires_grad());
  CHECK(model->named_parameters(/*recurse=*/false).empty());
  CHECK(model->child("3")->named_parameters(false).empty());
  CHECK(names_of(model->child("3")->child("1")->named_parameters(false)) ==
        std::vector<std::string>{"weight", "bias"});
}

TEST_CASE("the Sequential with PyTorch's state reproduces its training and eval outputs",
          "[nn][module][golden]") {
  const auto model = small_model();
  const auto& file = sequential_golden();
  model->load_state_dict(fixture_state(*model, "before"), file.path());

  model->train();
  check_close("training output", (*model)(file.get("sequential/x_train").to(DType::f32)),
              file.get("sequential/out_train"));
  // The training pass updated the running statistics and counters as PyTorch's did.
  for (const auto& entry : model->state_dict())
    check_close("state " + entry.name, entry.tensor, file.get("sequential/after." + entry.name));

  model->eval();
  check_close("eval output", (*model)(file.get("sequential/x_eval").to(DType::f32)),
              file.get("sequential/out_eval"));
}

TEST_CASE("train() and eval() reach every module of the tree", "[nn][module]") {
  const auto model = small_model();
  for (const auto& m : model->named_modules()) CHECK(m.module->is_training());
  model->eval();
  for (const auto& m : model->named_modules()) {
    INFO(m.name);
    CHECK_FALSE(m.module->is_training());
  }
  model->child("3")->train();
  CHECK_FALSE(model->is_training());
  CHECK(model->child("3")->child("1")->is_training());
  model->train();
  for (const auto& m : model->named_modules()) CHECK(m.module->is_training());
}

TEST_CASE("zero_grad clears every parameter's gradient", "[nn][module]") {
  const auto model = small_model();
  ds::mean((*model)(ds::randn({2, 3, 6, 6}))).backward();
  for (const auto& p : model->named_parameters()) {
    INFO(p.name);
    CHECK(p.tensor.grad().defined());
  }
  model->zero_grad();
  for (const auto& p : model->parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("load_state_dict copies every value into the existing tensors", "[nn][module]") {
  const auto model = small_model();
  const auto before = model->state_dict();
  model->load_state_dict(replacement_state(*model));
  const auto after = model->state_dict();
  REQUIRE(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    INFO(after[i].name);
    CHECK(after[i].tensor.is_same(before[i].tensor));  // layers keep their handles
    for (const double v : ds::test::values_of(after[i].tensor)) CHECK(v == 7.0);
  }
  CHECK(model->child("6")->named_parameters()[0].tensor.requires_grad());
}

TEST_CASE("load_state_dict is all or nothing and names the key at fault", "[nn][module]") {
  const auto model = small_model();
  const auto before = snapshot(*model);

  // Each bad entry is at or near the end, so that a loader copying as it validates would
  // already have changed the earlier entries.
  SECTION("wrong shape") {
    auto state = replacement_state(*model);
    set_entry(state, "3.1.running_var", Tensor::ones({5}));  // expects [6]
    CHECK_THROWS_MATCHES(model->load_state_dict(state, "weights.safetensors"), ds::Error,
                         MessageContains({"weights.safetensors", "3.1.running_var", "[5]"}));
  }
  SECTION("wrong dtype") {
    auto state = replacement_state(*model);
    set_entry(state, "6.bias", Tensor::ones({5}, DType::f64));
    CHECK_THROWS_MATCHES(model->load_state_dict(state), ds::Error,
                         MessageContains({"6.bias", "f64"}));
  }
  SECTION("missing key") {
    auto state = replacement_state(*model);
    state.pop_back();
    CHECK_THROWS_MATCHES(model->load_state_dict(state), ds::Error,
                         MessageContains({"missing", "6.bias"}));
  }
  SECTION("unexpected key") {
    auto state = replacement_state(*model);
    state.push_back({"7.weight", Tensor::ones({2})});
    CHECK_THROWS_MATCHES(model->load_state_dict(state), ds::Error,
                         MessageContains({"unexpected", "7.weight"}));
  }
  SECTION("integer counter given as float") {
    auto state = replacement_state(*model);
    set_entry(state, "1.num_batches_tracked", Tensor::zeros({}));  // an i32 counter
    CHECK_THROWS_MATCHES(model->load_state_dict(state), ds::Error,
                         MessageContains({"1.num_batches_tracked"}));
  }
  check_unchanged(*model, before);
}

TEST_CASE("replace_child swaps a layer in place", "[nn][module]") {
  const auto model = small_model();
  const auto replacement = nn::make<nn::ReLU6>();
  model->replace_child("2", replacement);
  CHECK(model->child("2") == replacement);
  CHECK(model->named_children()[2].name == "2");
  CHECK(names_of(model->state_dict()) == torch_names().state);

  model->replace_child("0", nn::make<nn::Identity>());  // no parameters: its names vanish
  CHECK(names_of(model->named_parameters()).front() == "1.weight");
  CHECK_THROWS_MATCHES(model->replace_child("9", nn::make<nn::ReLU>()), ds::Error,
                       MessageContains({"9"}));
  CHECK_THROWS_AS(model->replace_child("2", nullptr), ds::Error);
  CHECK_THROWS_MATCHES(model->child("nope"), ds::Error, MessageContains({"nope"}));
}

TEST_CASE("forward uses the replaced child", "[nn][module]") {
  nn::Sequential activation({nn::make<nn::ReLU>()});
  const Tensor x = Tensor::from_vector<float>({-1.0f, 3.0f, 50.0f}, {3});
  CHECK(ds::test::values_of(activation(x)) == std::vector<double>{0.0, 3.0, 50.0});
  activation.replace_child("0", nn::make<nn::ReLU6>());
  CHECK(ds::test::values_of(activation(x)) == std::vector<double>{0.0, 3.0, 6.0});
}

TEST_CASE("visit_children walks the tree depth first and can replace what it visits",
          "[nn][module]") {
  const auto model = small_model();
  std::vector<std::string> visited;
  model->visit_children([&](nn::Module& parent, const std::string& name, const nn::ModulePtr& c) {
    visited.push_back(parent.type_name() + ":" + name + ":" + c->type_name());
  });
  CHECK(visited == std::vector<std::string>{"Sequential:0:Conv2d", "Sequential:1:BatchNorm2d",
                                            "Sequential:2:ReLU", "Sequential:3:Sequential",
                                            "Sequential:0:Conv2d", "Sequential:1:BatchNorm2d",
                                            "Sequential:2:ReLU", "Sequential:4:AdaptiveAvgPool2d",
                                            "Sequential:5:Flatten", "Sequential:6:Linear"});

  int replaced = 0;
  model->visit_children([&](nn::Module& parent, const std::string& name, const nn::ModulePtr& c) {
    if (c->type_name() != "ReLU") return;
    parent.replace_child(name, nn::make<nn::ReLU6>());
    ++replaced;
  });
  CHECK(replaced == 2);
  CHECK(model->child("2")->type_name() == "ReLU6");
  CHECK(model->child("3")->child("2")->type_name() == "ReLU6");
}
