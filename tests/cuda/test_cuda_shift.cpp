// The CUDA shift kernels against the CPU kernels, bit for bit: every weight format and
// activation format (so every accumulator, the wide one included), random sizes and
// convolution geometries; the float API against the CPU's; and bad calls refused.
#include <cmath>
#include <random>
#include <set>

#include "../kernels/random_layers.hpp"
#include "autograd/grad_mode.hpp"
#include "cuda/shift.hpp"
#include "device_helpers.hpp"
#include "nn/models/mnist.hpp"
#include "shiftops/convert.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

using namespace ds;
using namespace ds::shift;
using ds::testing::MessageContains;

TEST_CASE("CUDA shift linear equals the CPU kernel bit for bit", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  std::mt19937_64 rng(21);
  std::uniform_int_distribution<std::int64_t> rows_of(1, 40), cols_of(1, 150);
  const std::int64_t batches[] = {1, 3, 19};
  std::set<Accumulator> seen;
  for (const test::LayerFormat& format : test::all_layer_formats()) {
    const std::int64_t rows = rows_of(rng), cols = cols_of(rng);
    const std::int64_t batch = batches[rng() % 3];
    const PackedWeights w = test::random_packed(rng, format, {rows, cols}, rng() % 2);
    seen.insert(choose_accumulator(w, format.activation, LoopForm::dot));
    const auto x = test::random_activations(rng, format.activation, batch * cols);
    std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * rows));
    std::vector<std::int64_t> actual(expected.size());
    linear_int(w, x.data(), batch, format.activation, expected.data(), kernel_path());
    cuda::linear_int(cuda::DeviceShiftWeights(w), x.data(), batch, format.activation,
                     actual.data());
    INFO(test::describe(format) << " rows=" << rows << " cols=" << cols << " batch=" << batch);
    REQUIRE(actual == expected);
  }
  CHECK(seen.count(Accumulator::wide) == 1);
}

TEST_CASE("CUDA shift conv2d equals the CPU kernel for every geometry", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  std::mt19937_64 rng(23);
  int cases = 0;
  std::set<Accumulator> seen;
  for (const test::LayerFormat& format : test::all_layer_formats()) {
    const auto drawn = test::random_conv_case(rng);
    if (!drawn) continue;
    const ConvGeometry& g = drawn->geometry;
    const PackedWeights w = test::random_packed(
        rng, format, {drawn->out_channels, g.channels / g.params.groups, g.kernel_h, g.kernel_w},
        rng() % 2);
    seen.insert(choose_accumulator(w, format.activation, LoopForm::dot));
    const auto x =
        test::random_activations(rng, format.activation, g.batch * g.channels * g.height * g.width);
    const std::size_t outputs =
        static_cast<std::size_t>(g.batch * drawn->out_channels * g.out_h() * g.out_w());
    std::vector<std::int64_t> expected(outputs), actual(outputs);
    conv2d_int(w, x.data(), g, format.activation, expected.data(), kernel_path());
    cuda::conv2d_int(cuda::DeviceShiftWeights(w), x.data(), g, format.activation, actual.data());
    INFO(test::describe(format) << " " << drawn->describe());
    REQUIRE(actual == expected);
    ++cases;
  }
  CHECK(cases > 40);
  CHECK(seen.count(Accumulator::wide) == 1);
}

// Layers of many columns and samples: several tiles of staged inputs per block (1024 columns
// for tiles of 8 samples, 8192 for single samples), rows that leave warps idle, every way of
// adding (int32 chunks for 4-bit codes on narrow activations, int64 otherwise), convolution
// groups, and 1x1 convolutions that read their input without unfolding it.
TEST_CASE("CUDA shift linear equals the CPU kernel on layers taller than one launch",
          "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  std::mt19937_64 rng(37);
  // One launch covers at most 65535 blocks of 8 rows: one row more takes a second, sliced one.
  const std::int64_t rows = 65535 * 8 + 1, cols = 16;
  for (const test::LayerFormat format : {test::LayerFormat{4, ShiftType::PS, {8, true}},
                                         test::LayerFormat{8, ShiftType::Q, {16, true}}}) {
    const PackedWeights w = test::random_packed(rng, format, {rows, cols}, true);
    const cuda::DeviceShiftWeights on_device(w);
    for (const std::int64_t batch : {1, 9}) {
      const auto x = test::random_activations(rng, format.activation, batch * cols);
      std::vector<std::int64_t> expected(static_cast<std::size_t>(batch * rows));
      std::vector<std::int64_t> actual(expected.size());
      linear_int(w, x.data(), batch, format.activation, expected.data(), kernel_path());
      cuda::linear_int(on_device, x.data(), batch, format.activation, actual.data());
      INFO(test::describe(format) << " batch=" << batch << " code bits=" << w.code_bits);
      REQUIRE(actual == expected);
    }
  }
}

TEST_CASE("CUDA shift kernels equal the CPU's on layers of many columns", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  std::mt19937_64 rng(31);
  int narrow = 0, int64 = 0;
  for (const test::LayerFormat& format : test::all_layer_formats()) {
    if (format.weight_bits != 3 && format.weight_bits != 8) continue;
    struct Size {
      std::int64_t rows, cols, batch;
    };
    for (const Size size : {Size{70, 9000, 3}, Size{13, 2500, 21}}) {
      const PackedWeights w = test::random_packed(rng, format, {size.rows, size.cols}, true);
      if (choose_accumulator(w, format.activation, LoopForm::dot) == Accumulator::wide) continue;
      const bool is_narrow =
          w.code_bits == 4 && format.activation.bits + (format.activation.is_signed ? 0 : 1) <= 20;
      ++(is_narrow ? narrow : int64);
      const auto x = test::random_activations(rng, format.activation, size.batch * size.cols);
      std::vector<std::int64_t> expected(static_cast<std::size_t>(size.batch * size.rows));
      std::vector<std::int64_t> actual(expected.size());
      linear_int(w, x.data(), size.batch, format.activation, expected.data(), kernel_path());
      cuda::linear_int(cuda::DeviceShiftWeights(w), x.data(), size.batch, format.activation,
                       actual.data());
      INFO(test::describe(format) << " rows=" << size.rows << " cols=" << size.cols
                                  << " batch=" << size.batch);
      REQUIRE(actual == expected);
    }
  }
  CHECK(narrow >= 4);
  CHECK(int64 >= 4);

  struct Conv {
    std::int64_t batch, channels, out_channels, height, width, kernel, stride, pad, groups;
  };
  for (const Conv& c : {Conv{2, 150, 20, 10, 9, 3, 1, 1, 1}, Conv{3, 64, 16, 7, 7, 1, 1, 0, 2},
                        Conv{2, 48, 24, 12, 12, 3, 2, 1, 3}, Conv{5, 40, 9, 6, 5, 1, 2, 0, 1}}) {
    ConvGeometry g;
    g.batch = c.batch, g.channels = c.channels, g.height = c.height, g.width = c.width;
    g.kernel_h = g.kernel_w = c.kernel;
    g.params.stride_h = g.params.stride_w = c.stride;
    g.params.pad_h = g.params.pad_w = c.pad;
    g.params.groups = c.groups;
    for (const test::LayerFormat format : {test::LayerFormat{4, ShiftType::PS, {8, true}},
                                           test::LayerFormat{3, ShiftType::Q, {32, false}},
                                           test::LayerFormat{8, ShiftType::Q, {16, true}}}) {
      const PackedWeights w = test::random_packed(
          rng, format, {c.out_channels, c.channels / c.groups, c.kernel, c.kernel}, true);
      const auto x = test::random_activations(rng, format.activation,
                                              c.batch * c.channels * c.height * c.width);
      std::vector<std::int64_t> expected(
          static_cast<std::size_t>(c.batch * c.out_channels * g.out_h() * g.out_w()));
      std::vector<std::int64_t> actual(expected.size());
      conv2d_int(w, x.data(), g, format.activation, expected.data(), kernel_path());
      cuda::conv2d_int(cuda::DeviceShiftWeights(w), x.data(), g, format.activation, actual.data());
      INFO(test::describe(format) << " C=" << c.channels << " O=" << c.out_channels << " k="
                                  << c.kernel << " stride=" << c.stride << " groups=" << c.groups);
      REQUIRE(actual == expected);
    }
  }
}

TEST_CASE("CUDA shift layers on float tensors match the CPU's", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  std::mt19937_64 rng(29);
  Generator gen(3);
  const ActivationBits bits{4, 12};
  const test::LayerFormat format{5, ShiftType::PS, {16, true}};
  const PackedWeights linear = test::random_packed(rng, format, {24, 70}, false);
  const Tensor x = randn({5, 70}, DType::f32, gen) * 3.0;
  const cuda::DeviceShiftWeights linear_device(linear);
  const Tensor on_gpu = cuda::shift_linear(x.to(Device::cuda()), linear_device, bits);
  REQUIRE(on_gpu.device() == Device::cuda());
  CHECK(on_gpu.to(Device::cpu()).to_vector<float>() ==
        shift_linear(x, linear, bits).to_vector<float>());

  const PackedWeights conv = test::random_packed(rng, format, {6, 3, 3, 3}, false);
  nn::functional::Conv2dParams params;
  params.pad_h = params.pad_w = 1;
  params.stride_h = 2;
  const Tensor image = randn({2, 3, 9, 8}, DType::f32, gen);
  const Tensor conv_gpu = cuda::shift_conv2d(image.to(Device::cuda()),
                                             cuda::DeviceShiftWeights(conv), 3, 3, params, bits);
  CHECK(conv_gpu.to(Device::cpu()).to_vector<float>() ==
        shift_conv2d(image, conv, 3, 3, params, bits).to_vector<float>());

  CHECK_THROWS_MATCHES(cuda::shift_linear(x, linear_device, bits), Error,
                       MessageContains({"shift_linear", "f32 tensors on cuda:0"}));
  Tensor with_nan = x.clone();
  with_nan.view({-1}).narrow(0, 7, 1).fill_(std::nan(""));
  CHECK_THROWS_MATCHES(cuda::shift_linear(with_nan.to(Device::cuda()), linear_device, bits), Error,
                       MessageContains({"shift_linear", "NaN"}));
  CHECK_THROWS_MATCHES(
      cuda::shift_linear(x.narrow(1, 0, 69).to(Device::cuda()), linear_device, bits), Error,
      MessageContains({"shift_linear", "70 columns"}));

  // A bias, and a layer that needs the wide accumulator (Q, 8 weight bits, 16.16 activations).
  const ActivationBits wide_bits{16, 16};
  PackedWeights wide = test::random_packed(rng, {8, ShiftType::Q, {32, true}}, {9, 40}, false);
  wide.bias = test::random_bias(rng, wide.rows);
  wide.fraction_bits = wide_bits.fraction;
  REQUIRE(choose_accumulator(wide, {32, true}, LoopForm::dot) == Accumulator::wide);
  const Tensor wide_x = randn({4, 40}, DType::f32, gen) * 100.0;
  CHECK(cuda::shift_linear(wide_x.to(Device::cuda()), cuda::DeviceShiftWeights(wide), wide_bits)
            .to(Device::cpu())
            .to_vector<float>() == shift_linear(wide_x, wide, wide_bits).to_vector<float>());
}

// The kernel alone on fixed-point device tensors: the CPU kernel's integers, as y / 2^F in f32
// (the conversion the float API makes), for both ways of adding and a bias; bad calls refused.
TEST_CASE("CUDA shift linear on fixed-point tensors gives the CPU kernel's values", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  std::mt19937_64 rng(37);
  const int fraction = 12;
  for (const test::LayerFormat& format : {test::LayerFormat{4, ShiftType::PS, {16, true}},
                                          test::LayerFormat{5, ShiftType::PS, {24, true}}}) {
    PackedWeights w = test::random_packed(rng, format, {33, 300}, true);
    w.fraction_bits = fraction;
    REQUIRE(choose_accumulator(w, format.activation, LoopForm::dot) != Accumulator::wide);
    const std::int64_t batch = 5;
    const auto x = test::random_activations(rng, format.activation, batch * w.cols);
    std::vector<std::int64_t> integers(static_cast<std::size_t>(batch * w.rows));
    linear_int(w, x.data(), batch, format.activation, integers.data(), kernel_path());
    std::vector<float> expected;
    for (const std::int64_t y : integers)
      expected.push_back(static_cast<float>(y) * std::ldexp(1.0f, -fraction));
    const cuda::DeviceShiftWeights device_weights(w);
    const Tensor x_fixed = Tensor::from_vector(x, {batch, w.cols}).to(Device::cuda());
    const Tensor y = cuda::shift_linear_fixed(x_fixed, device_weights, format.activation, fraction);
    INFO(test::describe(format));
    REQUIRE(y.shape() == Shape{batch, w.rows});
    CHECK(y.to(Device::cpu()).to_vector<float>() == expected);
    CHECK_THROWS_MATCHES(cuda::shift_linear_fixed(x_fixed.to(DType::f32), device_weights,
                                                  format.activation, fraction),
                         Error, MessageContains({"shift_linear_fixed", "i32 tensors on cuda:0"}));
    CHECK_THROWS_MATCHES(
        cuda::shift_linear_fixed(x_fixed, device_weights, format.activation, fraction + 1), Error,
        MessageContains({"shift_linear_fixed", "bias", "fraction bits"}));
    CHECK_THROWS_MATCHES(cuda::shift_linear_fixed(x_fixed.narrow(1, 0, 299), device_weights,
                                                  format.activation, fraction),
                         Error, MessageContains({"shift_linear_fixed", "300 columns"}));
  }
}

// use_kernel on a model on the GPU: every shift layer runs through the CUDA kernels (inference
// on weights uploaded once, training on the weights packed at that step); between them ReLU and
// max pooling are exact, so the last layer's outputs equal the CPU kernels' bit for bit. (The
// model's final log_softmax is left out: its exp and log round differently on the devices.)
TEST_CASE("a use_kernel model on the GPU gives the CPU kernels' logits", "[cuda][gpu]") {
  if (test::skip_without_gpu()) return;
  const auto make_model = [] {
    manual_seed(12);
    nn::ModulePtr model = nn::models::conv_mnist();
    convert_to_shift(*model, kConvertAll, {});
    use_kernel(*model);
    return model;
  };
  // ConvMNIST's forward (nn/models/mnist.cpp) up to fc2's output.
  const auto logits = [](const nn::Module& model, const Tensor& images) {
    const Window pool{2, 2, 2, 2};
    Tensor x = nn::functional::max_pool2d(relu(model.child("conv1")->forward(images)), pool);
    x = nn::functional::max_pool2d(relu(model.child("conv2")->forward(x)), pool);
    x = relu(model.child("fc1")->forward(x.reshape({-1, 4 * 4 * 50})));
    return model.child("fc2")->forward(x);
  };
  const nn::ModulePtr on_cpu = make_model(), on_gpu = make_model();
  on_gpu->to(Device::cuda());
  const Tensor images = randn({16, 1, 28, 28});
  const Tensor training = logits(*on_gpu, images.to(Device::cuda()));
  test::require_identical(logits(*on_cpu, images), training);
  training.sum().backward();
  on_cpu->eval();
  on_gpu->eval();
  NoGradGuard no_grad;
  const Tensor expected = logits(*on_cpu, images);
  for (int pass = 0; pass < 2; ++pass)
    test::require_identical(expected, logits(*on_gpu, images.to(Device::cuda())));
  // The whole model, log_softmax included, to its rounding.
  test::require_close(on_cpu->forward(images), on_gpu->forward(images.to(Device::cuda())), 1e-6,
                      1e-6);
}

TEST_CASE("packed weights that break the format are refused before they reach a device", "[cuda]") {
  // Runs without a GPU: the check comes before any CUDA call.
  std::mt19937_64 rng(31);
  const PackedWeights good =
      test::random_packed(rng, {5, ShiftType::PS, {16, true}}, {3, 70}, false);
  REQUIRE(good.code_bits == 8);
  PackedWeights short_codes = good;
  short_codes.codes.pop_back();
  CHECK_THROWS_MATCHES(cuda::DeviceShiftWeights(short_codes), Error,
                       MessageContains({"DeviceShiftWeights", "code bytes"}));
  PackedWeights bad_width = good;
  bad_width.code_bits = 6;
  CHECK_THROWS_MATCHES(cuda::DeviceShiftWeights(bad_width), Error,
                       MessageContains({"DeviceShiftWeights", "code width 6"}));
  PackedWeights bad_bias = good;
  bad_bias.bias.assign(2, 0);
  CHECK_THROWS_MATCHES(cuda::DeviceShiftWeights(bad_bias), Error,
                       MessageContains({"DeviceShiftWeights", "2 bias values for 3 rows"}));
  PackedWeights out_of_range = good;
  out_of_range.codes[5] = static_cast<std::uint8_t>(good.max_k + 1);  // shift amount > K
  CHECK_THROWS_MATCHES(cuda::DeviceShiftWeights(out_of_range), Error,
                       MessageContains({"DeviceShiftWeights", "row 0 column 5", "shift range"}));
  PackedWeights padding = good;
  padding.codes[100] = 0;  // a nonzero weight in the padding past the 70 columns
  CHECK_THROWS_MATCHES(cuda::DeviceShiftWeights(padding), Error,
                       MessageContains({"DeviceShiftWeights", "column 100"}));
}
