// The layers above the device back-end keep every tensor of a model, its gradients, its
// buffers and its optimizer state on the model's device. Checked on a host-memory stand-in
// for the GPU (device_helpers.hpp), so it runs on every machine; any CPU tensor that reaches
// the device back-end fails the test. The CPU has direct kernels of its own for a few layers
// (max pooling, batch norm, optimizer moments) that the device path builds from primitives,
// so results agree to f32 rounding rather than bit for bit.
#include <catch2/catch.hpp>

#include "autograd/grad_mode.hpp"
#include "device_helpers.hpp"
#include "model_step.hpp"
#include "shiftops/device_weights.hpp"
#include "shiftops/kernel.hpp"
#include "shiftops/layers.hpp"
#include "tensor/ops.hpp"

using namespace ds;

TEST_CASE("training steps on a non-CPU device match the CPU", "[cuda][plumbing]") {
  const auto [model, optimizer] = GENERATE(table<std::string, std::string>({
      {"mnist-conv", "sgd"},
      {"mnist-conv-shift", "adam"},
      {"resnet20", "radam"},
  }));
  INFO(model << " with " << optimizer);
  const test::StepResult on_cpu = test::train_steps(model, optimizer, Device::cpu());
  test::HostAliasBackend stand_in;
  const test::StepResult on_device = test::train_steps(model, optimizer, Device::cuda());
  test::require_same_training(on_cpu, on_device, 1e-4, 1e-6);
}

TEST_CASE("moving tensors between devices keeps values and records the move", "[cuda][plumbing]") {
  test::HostAliasBackend stand_in;
  Tensor x = Tensor::from_vector<float>({1, -2, 3, 4, 5, -6}, {2, 3});
  x.requires_grad_();
  const Tensor on_device = x.t().to(Device::cuda());  // a transposed view goes over packed
  REQUIRE(on_device.device() == Device::cuda());
  REQUIRE(on_device.to_vector<float>() == std::vector<float>{1, 4, -2, 5, 3, -6});
  (on_device * on_device).sum().backward();
  REQUIRE(x.grad().device() == Device::cpu());
  REQUIRE(x.grad().to_vector<float>() == std::vector<float>{2, -4, 6, 8, 10, -12});
}

TEST_CASE("mixing devices in one op is refused with both devices named", "[cuda][plumbing]") {
  test::HostAliasBackend stand_in;
  const Tensor a = Tensor::ones({3});
  const Tensor b = Tensor::ones({3}, DType::f32, Device::cuda());
  REQUIRE_THROWS_WITH(a + b, Catch::Contains("cpu") && Catch::Contains("cuda:0"));
  // Batch norm's back-ends read its per-channel tensors as the input's device memory.
  const Tensor x = Tensor::ones({2, 3}, DType::f32, Device::cuda());
  REQUIRE_THROWS_WITH(
      nn::functional::batch_norm(x, Tensor(), Tensor(), Tensor::ones({3}), Tensor(), true, 0.1,
                                 1e-5),
      Catch::Contains("batch_norm") && Catch::Contains("cpu") && Catch::Contains("cuda:0"));
}

namespace {

// Shift kernels for the stand-in device: the "uploaded" weights are a host copy, and each call
// runs the CPU kernel on the input brought to the host, so the results must equal the CPU
// layers' bit for bit. Uploads and calls are counted; the real uploader is put back afterwards.
class StandInShiftKernels {
 public:
  StandInShiftKernels()
      : previous_(shift::register_weight_uploader(
            DeviceKind::cuda, [this](const shift::PackedWeights& weights, Device device) {
              REQUIRE(device == Device::cuda());
              ++uploads;
              return std::make_shared<const Weights>(weights, calls, live);
            })) {}
  ~StandInShiftKernels() { shift::register_weight_uploader(DeviceKind::cuda, previous_); }
  StandInShiftKernels(const StandInShiftKernels&) = delete;
  StandInShiftKernels& operator=(const StandInShiftKernels&) = delete;

  int uploads = 0, calls = 0;
  int live = 0;  // uploaded weights not yet freed

 private:
  class Weights final : public shift::DeviceWeights {
   public:
    Weights(const shift::PackedWeights& packed, int& calls, int& live)
        : packed_(packed), calls_(calls), live_(live) {
      ++live_;
    }
    ~Weights() override { --live_; }
    Weights(const Weights&) = delete;
    Weights& operator=(const Weights&) = delete;
    Tensor linear(const Tensor& x, const shift::ActivationBits& bits) const override {
      return on_host(x, [&](const Tensor& h) { return shift::shift_linear(h, packed_, bits); });
    }
    Tensor conv2d(const Tensor& x, std::int64_t kernel_h, std::int64_t kernel_w,
                  const nn::functional::Conv2dParams& params,
                  const shift::ActivationBits& bits) const override {
      return on_host(x, [&](const Tensor& h) {
        return shift::shift_conv2d(h, packed_, kernel_h, kernel_w, params, bits);
      });
    }

   private:
    template <typename Op>
    Tensor on_host(const Tensor& x, Op&& op) const {
      REQUIRE(x.device() == Device::cuda());
      ++calls_;
      return op(x.to(Device::cpu())).to(x.device());
    }
    shift::PackedWeights packed_;
    int& calls_;
    int& live_;
  };

  shift::WeightUploader previous_;
};

nn::ModulePtr shift_conv_mnist() {
  manual_seed(12);
  nn::ModulePtr model = nn::models::conv_mnist();
  shift::convert_to_shift(*model, shift::kConvertAll, {});
  shift::use_kernel(*model);
  return model;
}

}  // namespace

TEST_CASE("shift layers on a non-CPU device run through that device's shift kernels",
          "[cuda][plumbing]") {
  const nn::ModulePtr on_cpu = shift_conv_mnist();
  test::HostAliasBackend stand_in;
  StandInShiftKernels kernels;
  const nn::ModulePtr on_device = shift_conv_mnist();
  on_device->to(Device::cuda());
  const std::int64_t layers = static_cast<std::int64_t>(shift::shift_layers(*on_cpu).size());
  REQUIRE(layers == 4);
  const Tensor images = randn({3, 1, 28, 28});

  SECTION("inference uploads each layer's weights once and reuses them") {
    NoGradGuard no_grad;
    on_cpu->eval();
    on_device->eval();
    const Tensor expected = on_cpu->forward(images);
    for (int pass = 1; pass <= 2; ++pass) {
      const Tensor logits = on_device->forward(images.to(Device::cuda()));
      REQUIRE(logits.device() == Device::cuda());
      test::require_identical(expected, logits);
      CHECK(kernels.calls == pass * layers);
      CHECK(kernels.uploads == layers);
    }
    // A changed parameter is packed and uploaded again, for its layer only, and the old copy
    // freed.
    shift::shift_layers(*on_device).front().layer->bias().mul_(0.5);
    on_device->forward(images.to(Device::cuda()));
    CHECK(kernels.uploads == layers + 1);
    CHECK(kernels.live == layers);
  }

  SECTION("training packs and uploads the weights of each step, and backward stays on the device") {
    const Tensor expected = on_cpu->forward(images);
    const Tensor logits = on_device->forward(images.to(Device::cuda()));
    test::require_identical(expected, logits);
    CHECK(kernels.uploads == layers);
    logits.sum().backward();
    for (const auto& [name, parameter] : on_device->named_parameters()) {
      INFO(name);
      REQUIRE(parameter.grad().defined());
      CHECK(parameter.grad().device() == Device::cuda());
    }
    on_device->forward(images.to(Device::cuda()));
    CHECK(kernels.uploads == 2 * layers);
  }
}

TEST_CASE("a destroyed shift layer frees its uploaded weights", "[cuda][plumbing]") {
  test::HostAliasBackend stand_in;
  StandInShiftKernels kernels;
  nn::ModulePtr model = shift_conv_mnist();
  model->to(Device::cuda());
  model->eval();
  {
    NoGradGuard no_grad;
    model->forward(randn({2, 1, 28, 28}).to(Device::cuda()));
  }
  CHECK(kernels.live == 4);
  model.reset();
  CHECK(kernels.live == 0);
}

TEST_CASE("a shift layer refuses a device whose build has no shift kernels", "[cuda][plumbing]") {
  test::HostAliasBackend stand_in;
  // Removes the uploader for the test and puts the real one back however the test ends.
  struct NoUploader {
    shift::WeightUploader real =
        shift::register_weight_uploader(DeviceKind::cuda, shift::WeightUploader());
    ~NoUploader() { shift::register_weight_uploader(DeviceKind::cuda, real); }
  } no_uploader;
  const nn::ModulePtr model = shift_conv_mnist();
  model->to(Device::cuda());
  model->eval();
  NoGradGuard no_grad;
  CHECK_THROWS_WITH(model->forward(randn({1, 1, 28, 28}).to(Device::cuda())),
                    Catch::Contains("ShiftConv2d") && Catch::Contains("no shift kernels") &&
                        Catch::Contains("cuda:0"));
}
