// Model conversion (DESIGN.md section 2): which layers convert_to_shift replaces in the MNIST
// models, CIFAR resnet20 and ImageNet resnet18 at depths 0, 1, 3 and 1000 (the expected sets
// are written out by hand from the visiting and counting rules, not computed by the code under
// test), weight conversion, rounding for deployment and the summary.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "nn/layers.hpp"
#include "nn/models/zoo.hpp"
#include "nn/summary.hpp"
#include "shiftops/convert.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace {

using ds::DType;
using ds::Tensor;
using ds::test::values_of;
using ds::testing::MessageContains;
namespace nn = ds::nn;
namespace models = ds::nn::models;
namespace shift = ds::shift;
using shift::ShiftType;
using Names = std::set<std::string>;

Names shift_layer_names(nn::Module& model) {
  Names names;
  for (const auto& entry : shift::shift_layers(model)) names.insert(entry.name);
  return names;
}

shift::ConversionOptions conversion(ShiftType type, bool convert_all_linear) {
  shift::ConversionOptions options;
  options.type = type;
  options.convert_all_linear = convert_all_linear;
  return options;
}

struct Expected {
  int depth;
  int counted;
  Names names;
};

// Converts a fresh model at each depth and checks the converted names and the returned count.
void check_conversions(const std::string& dataset, const std::string& arch, bool convert_all_linear,
                       const std::vector<Expected>& expected,
                       const std::vector<ShiftType>& types = {ShiftType::PS, ShiftType::Q}) {
  for (const auto& e : expected) {
    for (const ShiftType type : types) {
      INFO(dataset << "/" << arch << " depth " << e.depth << " " << shift::shift_type_name(type)
                   << (convert_all_linear ? " convert_all_linear" : ""));
      ds::manual_seed(1);
      const auto model = models::create(dataset, arch);
      const int counted =
          shift::convert_to_shift(*model, e.depth, conversion(type, convert_all_linear));
      CHECK(counted == e.counted);
      CHECK(shift_layer_names(*model) == e.names);
      for (const auto& entry : shift::shift_layers(*model))
        CHECK(entry.layer->shift_type() == type);
    }
  }
}

Names with(Names names, const Names& more) {
  names.insert(more.begin(), more.end());
  return names;
}

// The 19 convolutions of CIFAR resnet20 and the 20 of ImageNet resnet18, by hand.
Names resnet20_convs() {
  Names names{"conv1"};
  for (const char* stage : {"layer1", "layer2", "layer3"})
    for (const char* block : {"0", "1", "2"})
      for (const char* conv : {"conv1", "conv2"})
        names.insert(std::string(stage) + "." + block + "." + conv);
  return names;
}

Names resnet18_convs() {
  Names names{"conv1", "layer2.0.downsample.0", "layer3.0.downsample.0", "layer4.0.downsample.0"};
  for (const char* stage : {"layer1", "layer2", "layer3", "layer4"})
    for (const char* block : {"0", "1"})
      for (const char* conv : {"conv1", "conv2"})
        names.insert(std::string(stage) + "." + block + "." + conv);
  return names;
}

// "" when every value passes, else the first one that does not, with its index.
template <typename Predicate>
std::string first_failing(const std::vector<double>& values, Predicate&& ok) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!ok(values[i])) {
      std::ostringstream out;
      out << std::setprecision(17) << "value " << values[i] << " at index " << i;
      return out.str();
    }
  return "";
}

bool on_grid(double v, const shift::ActivationBits& bits) {
  const double scaled = std::ldexp(v, bits.fraction);
  return scaled == std::floor(scaled) && v >= bits.lowest() && v <= bits.highest();
}

}  // namespace

TEST_CASE("conversion: MNIST linear model, Linears counted", "[shiftops][convert]") {
  // The original's mnist.py passes convert_all_linear = (type != linear): here every Linear
  // counts toward the depth, and the walk starts at the output end (fc3).
  check_conversions("mnist", "linear", false,
                    {{0, 0, {}},
                     {1, 1, {"fc3"}},
                     {3, 3, {"fc1", "fc2", "fc3"}},
                     {1000, 3, {"fc1", "fc2", "fc3"}}});
}

TEST_CASE("conversion: MNIST conv model, every Linear converted uncounted", "[shiftops][convert]") {
  const Names linears{"fc1", "fc2"};
  check_conversions("mnist", "conv", true,
                    {{0, 0, linears},
                     {1, 1, with(linears, {"conv2"})},
                     {3, 2, with(linears, {"conv1", "conv2"})},
                     {1000, 2, with(linears, {"conv1", "conv2"})}});
  // With Linears counted, fc2 is the last layer and comes first.
  check_conversions("mnist", "conv", false,
                    {{0, 0, {}},
                     {1, 1, {"fc2"}},
                     {3, 3, {"fc2", "fc1", "conv2"}},
                     {1000, 4, {"fc2", "fc1", "conv2", "conv1"}}});
}

TEST_CASE("conversion: CIFAR resnet20 from the output end", "[shiftops][convert]") {
  // Reverse definition order: linear, then layer3's blocks 2, 1, 0, each block's children last
  // first (shortcut, bn2, conv2, bn1, conv1).
  check_conversions("cifar10", "resnet20", true,
                    {{0, 0, {"linear"}},
                     {1, 1, {"linear", "layer3.2.conv2"}},
                     {3, 3, {"linear", "layer3.2.conv2", "layer3.2.conv1", "layer3.1.conv2"}},
                     {1000, 19, with(resnet20_convs(), {"linear"})}});
}

TEST_CASE("conversion: ImageNet resnet18 from the output end", "[shiftops][convert]") {
  // layer4.1 has no downsample; in layer4.0 the downsample container is the last child, so
  // its convolution is visited before layer4.0.conv2.
  check_conversions("imagenet", "resnet18", true,
                    {{0, 0, {"fc"}},
                     {1, 1, {"fc", "layer4.1.conv2"}},
                     {3, 3, {"fc", "layer4.1.conv2", "layer4.1.conv1", "layer4.0.downsample.0"}},
                     {1000, 20, with(resnet18_convs(), {"fc"})}},
                    {ShiftType::PS});  // Q walks the same tree; one method keeps this quick
}

TEST_CASE("conversion: fully shift, train mode and untouched originals", "[shiftops][convert]") {
  const auto model = models::create("mnist", "conv");
  CHECK_FALSE(shift::is_fully_shift(*model));
  const auto fc2 = std::dynamic_pointer_cast<nn::Linear>(model->child("fc2"));
  REQUIRE(fc2);
  const auto fc2_weight = values_of(fc2->weight());
  model->eval();
  shift::ConversionOptions options = conversion(ShiftType::Q, true);
  options.convert_weights = true;
  shift::convert_to_shift(*model, 1, options);
  CHECK_FALSE(shift::is_fully_shift(*model));     // conv1 is left
  CHECK(values_of(fc2->weight()) == fc2_weight);  // the replaced layer's tensors are not mutated
  for (const auto& m : model->named_modules()) CHECK_FALSE(m.module->is_training());
  shift::convert_to_shift(*model, shift::kConvertAll, options);
  CHECK(shift::is_fully_shift(*model));
  CHECK(shift::shift_layers(*model).size() == 4);
  CHECK_THROWS_MATCHES(shift::convert_to_shift(*model, -1, options), ds::Error,
                       MessageContains({"depth", "-1"}));
}

TEST_CASE("conversion: weights from the FP32 layer", "[shiftops][convert]") {
  auto model = std::make_shared<nn::Sequential>(
      std::vector<nn::ModulePtr>{nn::make<nn::Linear>(4, 3), nn::make<nn::ReLU>(),
                                 nn::make<nn::Conv2d>(nn::Conv2dOptions::square(2, 2, 1))});
  const auto linear = std::dynamic_pointer_cast<nn::Linear>(model->child("0"));
  {
    ds::NoGradGuard no_grad;
    // Zero, exact powers of two, magnitudes beyond the 5-bit PS range.
    linear->weight().copy_(
        Tensor::from_vector(std::vector<float>{0.0f, -0.3f, 0.7f, 1.0f, 3.0f, -1e-6f, 0.25f, -0.5f,
                                               0.126f, 0.09f, -2.0f, 0.0001f},
                            {3, 4}));
    linear->bias().copy_(Tensor::from_vector(std::vector<float>{0.3f, -0.3f, 100000.0f}, {3}));
  }
  const auto weight = values_of(linear->weight());
  const auto bias = values_of(linear->bias());

  SECTION("PS: shift = round(log2|w|) in range, sign = sign(w), bias kept") {
    shift::ConversionOptions options = conversion(ShiftType::PS, true);
    options.convert_weights = true;
    options.shift.activation = {4, 4};
    shift::convert_to_shift(*model, shift::kConvertAll, options);
    const auto layer = std::dynamic_pointer_cast<shift::ShiftLinear>(model->child("0"));
    REQUIRE(layer);
    // log2: -inf -1.74 -0.51 0 1.58 -19.9 -2 -1 -2.99 -3.47 1 -13.3
    CHECK(values_of(layer->shift()) ==
          std::vector<double>{-14, -2, -1, 0, 0, -14, -2, -1, -3, -3, 0, -13});
    CHECK(values_of(layer->sign()) == std::vector<double>{0, -1, 1, 1, 1, -1, 1, -1, 1, 1, -1, 1});
    CHECK(values_of(layer->bias()) == bias);
    CHECK(values_of(layer->effective_weight()) ==
          std::vector<double>{0, -0.25, 0.5, 1, 1, -std::ldexp(1.0, -14), 0.25, -0.5, 0.125, 0.125,
                              -1, std::ldexp(1.0, -13)});
  }
  SECTION("Q: weight kept, bias through fixed()") {
    shift::ConversionOptions options = conversion(ShiftType::Q, true);
    options.convert_weights = true;
    options.shift.activation = {4, 4};  // grid 1/16, range [-8, 7.9375]
    shift::convert_to_shift(*model, shift::kConvertAll, options);
    const auto layer = std::dynamic_pointer_cast<shift::ShiftLinear>(model->child("0"));
    REQUIRE(layer);
    CHECK(values_of(layer->weight()) == weight);
    CHECK(values_of(layer->bias()) == std::vector<double>{0.25, -0.3125, 7.9375});
  }
}

TEST_CASE("conversion: without convert_weights the layers start from their own init",
          "[shiftops][convert]") {
  ds::manual_seed(4);
  const auto model = models::create("mnist", "conv");
  shift::convert_to_shift(*model, shift::kConvertAll, conversion(ShiftType::PS, true));
  const auto conv1 = std::dynamic_pointer_cast<shift::ShiftConv2d>(model->child("conv1"));
  REQUIRE(conv1);
  for (const double s : values_of(conv1->shift())) REQUIRE((s >= -10.0 && s <= -1.0));
}

TEST_CASE("round_shift_weights: powers of two in range and biases on the grid",
          "[shiftops][convert]") {
  for (const ShiftType type : {ShiftType::PS, ShiftType::Q}) {
    for (const int bits : {2, 3, 5, 8}) {
      INFO(shift::shift_type_name(type) << " weight bits " << bits);
      ds::manual_seed(bits);
      const auto model = models::create("mnist", "conv");
      shift::ConversionOptions options = conversion(type, true);
      options.convert_weights = true;
      options.shift.weight_bits = bits;
      options.shift.activation = {3, 5};
      shift::convert_to_shift(*model, shift::kConvertAll, options);
      model->eval();
      {
        ds::NoGradGuard no_grad;  // push parameters off the grid and out of range
        for (const auto& p : model->named_parameters())
          p.tensor.copy_(p.tensor * 3.0 + ds::uniform(p.tensor.shape(), -0.5, 0.5));
      }
      const Tensor input = ds::randn({2, 1, 28, 28});
      Tensor before;
      {
        ds::NoGradGuard no_grad;
        before = (*model)(input);
      }
      shift::round_shift_weights(*model);
      const auto layers = shift::shift_layers(*model);
      REQUIRE(layers.size() == 4);
      for (const auto& entry : layers) {
        INFO(entry.name);
        auto& layer = *entry.layer;
        const shift::ShiftRange r = layer.range();
        const auto power_of_two_in_range = [&](double w) {
          if (w == 0) return true;
          const double k = std::log2(std::abs(w));
          return k == std::round(k) && k >= r.min_shift && k <= r.max_shift;
        };
        ds::NoGradGuard no_grad;
        CHECK(first_failing(values_of(layer.effective_weight()), power_of_two_in_range) == "");
        if (type == ShiftType::PS) {
          CHECK(first_failing(values_of(layer.shift()), [&](double s) {
                  return s == std::round(s) && s >= r.min_shift && s <= r.max_shift;
                }) == "");
          CHECK(first_failing(values_of(layer.sign()),
                              [](double g) { return g == -1.0 || g == 0.0 || g == 1.0; }) == "");
        } else {
          CHECK(first_failing(values_of(layer.weight()), power_of_two_in_range) == "");
        }
        CHECK(first_failing(values_of(layer.bias()),
                            [&](double b) { return on_grid(b, options.shift.activation); }) == "");
      }
      // The forward already used these weights: rounding them changes no output.
      Tensor after;
      {
        ds::NoGradGuard no_grad;
        after = (*model)(input);
      }
      const auto close = ds::test::allclose(after, before, 1e-6, 1e-6);
      INFO(close.message);
      CHECK(close);
    }
  }
}

TEST_CASE("summary: method, weight bits, multiplies replaced and packed size",
          "[shiftops][convert][summary]") {
  // conv_mnist on one 28x28 image: conv1 20x24x24 outputs x 25 MACs, conv2 50x8x8 x 500,
  // fc1 800 x 500, fc2 500 x 10.
  const std::map<std::string, std::int64_t> macs{
      {"conv1", 288000}, {"conv2", 1600000}, {"fc1", 400000}, {"fc2", 5000}};
  // Packed (docs/kernels.md): each row of weights padded to whole 64-weight blocks, at 8 bits
  // (b = 5) or 4 bits (b = 4, the exponents of these initial weights span fewer than 8 values),
  // biases as 32-bit words. Rows = output channels, columns = fan-in.
  struct Layout {
    std::int64_t rows, cols, biases;
  };
  const std::map<std::string, Layout> layouts{
      {"conv2", {50, 500, 50}}, {"fc1", {500, 800, 500}}, {"fc2", {10, 500, 10}}};
  for (const auto& [type, bits, kind] : std::vector<std::tuple<ShiftType, int, std::string>>{
           {ShiftType::PS, 5, "shift-PS"}, {ShiftType::Q, 4, "shift-Q"}}) {
    const auto model = models::create("mnist", "conv");
    shift::ConversionOptions options = conversion(type, true);
    options.shift.weight_bits = bits;
    shift::convert_to_shift(*model, 1, options);  // conv1 stays FP32
    const auto summary = nn::summarize(*model, {1, 1, 28, 28});
    std::int64_t replaced = 0;
    int seen = 0;
    for (const auto& layer : summary.layers) {
      if (!macs.count(layer.name)) continue;
      ++seen;
      INFO(layer.name);
      CHECK(layer.macs == macs.at(layer.name));
      if (layer.name == "conv1") {
        CHECK(layer.kind == "FP32");
        CHECK(layer.weight_bits == 32);
        CHECK(layer.multiplies_replaced == 0);
        CHECK(layer.stored_bytes == (500 + 20) * 4);
        continue;
      }
      const Layout layout = layouts.at(layer.name);
      const std::int64_t padded_cols = (layout.cols + 63) / 64 * 64;
      CHECK(layer.kind == kind);
      CHECK(layer.weight_bits == bits);
      CHECK(layer.multiplies_replaced == layer.macs);
      CHECK(layer.stored_bytes ==
            layout.rows * (bits <= 4 ? padded_cols / 2 : padded_cols) + 4 * layout.biases);
      replaced += layer.macs;
    }
    CHECK(seen == 4);
    CHECK(summary.multiplies_replaced == replaced);
    CHECK(summary.multiplies_replaced == 1600000 + 400000 + 5000);
    const std::string table = summary.table();
    CHECK_THAT(table, Catch::Contains(kind));
    CHECK_THAT(table, Catch::Contains("FP32"));
    CHECK_THAT(table, Catch::Contains("of them replaced by shifts"));
  }
}
