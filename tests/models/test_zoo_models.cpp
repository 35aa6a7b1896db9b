// Every model of the zoo against its PyTorch definition (golden/model_keys.txt): the
// state-dict keys in order, their shapes and the parameter count; then a training step on a
// small batch: logits of the right shape, finite, and a finite gradient for every parameter.
// Each model is built once for both checks: building dominates the run time.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "fixtures.hpp"
#include "nn/functional.hpp"
#include "nn/models/zoo.hpp"
#include "support/golden.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace models = ds::nn::models;
using ds::Shape;
using ds::Tensor;

namespace {

const std::vector<ds::test::ReferenceModel>& reference_models() {
  static const auto list = ds::test::read_reference_models(DS_MODELS_GOLDEN_DIR "/model_keys.txt");
  return list;
}

std::string shape_text(const Shape& shape) {
  std::string out;
  for (auto d : shape) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out.empty() ? "-" : out;
}

void check_structure(const ds::nn::Module& model, const ds::test::ReferenceModel& ref) {
  std::int64_t parameters = 0;
  for (const auto& p : model.parameters()) parameters += p.numel();
  CHECK(parameters == ref.parameters);
  // One text per model, so that a mismatch prints the differing keys in context.
  std::string ours, theirs;
  for (const auto& [name, tensor] : model.state_dict())
    ours += name + " " + shape_text(tensor.shape()) + "\n";
  for (const auto& [name, shape] : ref.keys) theirs += name + " " + shape_text(shape) + "\n";
  CHECK(ours == theirs);
}

bool all_finite(const Tensor& t) {
  for (const double v : ds::test::values_of(t))
    if (!std::isfinite(v)) return false;
  return true;
}

// The smallest convenient input: the ImageNet models reach a 1x1 map at 32x32 (AlexNet's
// stride-4 stem needs 63x63 or more).
Tensor small_batch(const ds::test::ReferenceModel& ref) {
  if (ref.dataset == "mnist") return ds::randn({2, 1, 28, 28});
  const std::int64_t size = ref.arch == "alexnet" ? 64 : 32;
  return ds::randn({2, 3, size, size});
}

void train_step(ds::nn::Module& model, const ds::test::ReferenceModel& ref, bool backward) {
  ds::manual_seed(7);
  const Tensor logits = model(small_batch(ref));
  REQUIRE(logits.shape() == Shape{2, ref.num_classes});
  CHECK(all_finite(logits));
  if (!backward) return;

  const Tensor target = Tensor::from_vector(std::vector<std::int32_t>{1, 3}, {2});
  ds::nn::functional::cross_entropy(logits, target).backward();
  int without_gradient = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    INFO(name);
    const Tensor g = p.grad();
    REQUIRE(g.defined());
    CHECK(g.shape() == p.shape());
    CHECK(all_finite(g));
    if (ds::max(ds::abs(g)).item() == 0.0) ++without_gradient;
  }
  // Dead ReLUs can starve a bias or two on a 2-image batch, but not much of a network.
  CHECK(without_gradient * 10 < static_cast<int>(model.named_parameters().size()));
}

bool is_imagenet_vgg(const ds::test::ReferenceModel& ref) {
  return ref.dataset == "imagenet" && ref.arch.rfind("vgg", 0) == 0;
}

// Builds each selected model once, checks its structure and runs a training step (forward
// only where `backward` says no).
template <typename Select, typename Backward>
void check_models(Select select, Backward backward) {
  int checked = 0;
  for (const auto& ref : reference_models()) {
    if (!select(ref)) continue;
    INFO(ref.dataset << " " << ref.arch);
    const auto model = models::create(ref.dataset, ref.arch, ref.num_classes);
    check_structure(*model, ref);
    train_step(*model, ref, backward(ref));
    ++checked;
  }
  CHECK(checked > 0);
}

}  // namespace

TEST_CASE("the reference lists every model of the zoo and nothing else") {
  std::set<std::string> reference, zoo;
  for (const auto& m : reference_models()) reference.insert(m.dataset + "/" + m.arch);
  for (const auto& dataset : models::list_datasets())
    for (const auto& arch : models::list_models(dataset)) zoo.insert(dataset + "/" + arch);
  CHECK(reference == zoo);
  CHECK(reference.size() == 2 + 2 * 13 + 17);
}

// CIFAR-100 models differ from the CIFAR-10 ones only in the classifier's width: forward only.
TEST_CASE("MNIST and CIFAR models match PyTorch and train") {
  check_models([](const auto& ref) { return ref.dataset != "imagenet"; },
               [](const auto& ref) { return ref.dataset != "cifar100"; });
}

// The backward passes of AlexNet and the VGGs cost seconds for their 60-140 M parameters'
// gradients; the other ImageNet models cover the same layers' backward.
TEST_CASE("ImageNet models match torchvision and train") {
  check_models([](const auto& ref) { return ref.dataset == "imagenet" && !is_imagenet_vgg(ref); },
               [](const auto& ref) { return ref.arch != "alexnet"; });
}

// Building an ImageNet VGG (133-144 M parameters) takes over ten seconds on two cores, nearly
// all of it drawing the initial weights, so these eight run as their own test, in the slow
// suite (`meson test -C build models_imagenet_vgg`).
TEST_CASE("ImageNet VGGs match torchvision and run", "[.][imagenet-vgg]") {
  check_models(is_imagenet_vgg, [](const auto&) { return false; });
}
