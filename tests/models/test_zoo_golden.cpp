// Logits equal PyTorch's for the same weights: CIFAR resnet20 with torch's random weights
// (stored in golden/resnet20_cifar10.*) in eval and training mode, and ImageNet resnet18 with
// the closed-form weights both sides compute (fixtures.cpp, generate_models.py).
#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "nn/models/zoo.hpp"
#include "support/golden.hpp"
#include "tensor/ops.hpp"

namespace models = ds::nn::models;
using ds::Tensor;

namespace {

// f32 sums over thousands of terms in a different order than PyTorch's: compare against the
// scale of the logits rather than elementwise relative error.
void check_logits(const Tensor& actual, const Tensor& expected) {
  const double scale = ds::max(ds::abs(expected)).item();
  const auto close = ds::test::allclose(actual, expected, 1e-4, 1e-4 * scale);
  INFO(close.message);
  CHECK(close.ok);
}

// The fixture's tensors for the model's keys, and the model's own value for keys PyTorch
// stores as int64 counters (num_batches_tracked), which the fixture leaves out.
std::vector<ds::nn::NamedTensor> state_from(const ds::nn::Module& model,
                                            const std::vector<ds::nn::NamedTensor>& fixture) {
  std::vector<ds::nn::NamedTensor> state;
  for (const auto& [name, own] : model.state_dict()) {
    const bool counter = own.dtype() != ds::DType::f32;
    state.push_back({name, counter ? own : ds::test::fixture_tensor(fixture, name)});
  }
  return state;
}

}  // namespace

TEST_CASE("CIFAR resnet20 reproduces PyTorch's logits") {
  const auto fixture = ds::test::read_fixture(DS_MODELS_GOLDEN_DIR, "resnet20_cifar10");
  const auto model = models::create("cifar10", "resnet20");
  model->load_state_dict(state_from(*model, fixture), "resnet20_cifar10 fixture");
  const Tensor x = ds::test::fixture_tensor(fixture, "input");

  model->eval();
  check_logits((*model)(x), ds::test::fixture_tensor(fixture, "logits_eval"));
  model->train();
  check_logits((*model)(x), ds::test::fixture_tensor(fixture, "logits_train"));
}

TEST_CASE("ImageNet resnet18 reproduces PyTorch's logits") {
  const auto expected = ds::test::read_fixture(DS_MODELS_GOLDEN_DIR, "resnet18_imagenet");
  const auto model = models::create("imagenet", "resnet18");
  std::vector<ds::nn::NamedTensor> state;
  for (const auto& [name, own] : model->state_dict())
    state.push_back(
        {name, own.dtype() == ds::DType::f32 ? ds::test::closed_form(name, own.shape()) : own});
  model->load_state_dict(state, "closed-form resnet18 weights");
  model->eval();
  const Tensor logits = (*model)(ds::test::closed_form("input", {2, 3, 64, 64}));
  check_logits(logits, ds::test::fixture_tensor(expected, "logits_eval"));
}
