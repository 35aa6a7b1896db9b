// Transforms against torchvision (transforms.golden, written by golden/generate_data_golden.py)
// and the properties of the random ones.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/functional.hpp"
#include "data/transforms.hpp"
#include "support/golden.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::data;
using ds::testing::MessageContains;

namespace {

const test::GoldenFile& golden() {
  static const test::GoldenFile file(std::string(DS_DATA_GOLDEN_DIR) + "/transforms.golden");
  return file;
}

std::vector<std::int64_t> params(const std::string& name) {
  std::vector<std::int64_t> out;
  for (double v : test::values_of(golden().get(name + "/params"))) {
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

std::vector<float> floats(const Tensor& tensor) {
  std::vector<float> out;
  for (double v : test::values_of(tensor)) out.push_back(static_cast<float>(v));
  return out;
}

using Op = std::function<Tensor(const std::string& name, const Tensor& input)>;

// Every case of the golden file with the op that computes it; the arguments are the ones the
// generator passed to torchvision.
const std::map<std::string, Op>& ops() {
  static const std::map<std::string, Op> table = [] {
    std::map<std::string, Op> t;
    t["to_tensor"] = [](const std::string&, const Tensor& x) { return to_float_image(x); };
    t["normalize"] = [](const std::string& name, const Tensor& x) {
      return normalize(x, floats(golden().get(name + "/mean")),
                       floats(golden().get(name + "/std")));
    };
    t["hflip"] = [](const std::string&, const Tensor& x) { return hflip(x); };
    t["crop"] = [](const std::string& name, const Tensor& x) {
      const auto p = params(name);
      return crop(x, p[0], p[1], p[2], p[3]);
    };
    t["pad"] = [](const std::string& name, const Tensor& x) { return pad(x, params(name)[0]); };
    t["resize"] = [](const std::string& name, const Tensor& x) {
      const auto p = params(name);
      return resize(x, p[0], p[1]);
    };
    t["resize_shorter"] = [](const std::string& name, const Tensor& x) {
      return resize_shorter(x, params(name)[0]);
    };
    t["center_crop"] = [](const std::string& name, const Tensor& x) {
      const auto p = params(name);
      return center_crop(x, p[0], p[1]);
    };
    t["resized_crop"] = [](const std::string& name, const Tensor& x) {
      const auto p = params(name);
      return resized_crop(x, p[0], p[1], p[2], p[3], p[4], p[5]);
    };
    return t;
  }();
  return table;
}

// The op of a case is the longest table key that prefixes its name.
const Op& op_for(const std::string& name) {
  const Op* found = nullptr;
  std::size_t length = 0;
  for (const auto& [key, op] : ops()) {
    if (name.rfind(key, 0) == 0 && key.size() > length) {
      found = &op;
      length = key.size();
    }
  }
  if (!found) FAIL("no op for golden case " << name);
  return *found;
}

// u8 results are compared exactly, except where torch's unrounded f32 value lies within float
// error of a .5 tie: a sum in another order may round to either neighbour there.
int u8_mismatches(const Tensor& actual, const Tensor& expected, const Tensor& unrounded) {
  const std::vector<double> a = test::values_of(actual);
  const std::vector<double> e = test::values_of(expected);
  const std::vector<double> f = test::values_of(unrounded);
  int mismatches = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool near_tie = std::abs(f[i] - std::floor(f[i]) - 0.5) < 1e-3;
    if (a[i] != e[i] && !(near_tie && std::abs(a[i] - e[i]) == 1)) ++mismatches;
  }
  return mismatches;
}

}  // namespace

TEST_CASE("deterministic transforms match torchvision", "[data][transforms][golden]") {
  REQUIRE(golden().cases().size() >= 20);
  for (const std::string& name : golden().cases()) {
    INFO("case " << name);
    const Tensor expected = golden().get(name + "/out");
    const Tensor actual = op_for(name)(name, golden().get(name + "/input"));
    CHECK(actual.dtype() == expected.dtype());
    if (golden().contains(name + "/out_float")) {
      CHECK(u8_mismatches(actual, expected, golden().get(name + "/out_float")) == 0);
    } else {
      // f32 results agree to float rounding: torch sums the four taps in another order.
      const auto close = test::allclose(actual, expected, 1e-5, 1e-6);
      CHECK(close.message == "");
    }
  }
}

TEST_CASE("random_crop picks a window of the padded image", "[data][transforms]") {
  const Tensor image = golden().get("crop_inside/input");  // f32 [3, 6, 8]
  const Tensor padded = pad(image, 2);
  const Transform transform = random_crop(5, 2);
  Generator gen(7);
  std::vector<bool> tops_seen(6);
  for (int draw = 0; draw < 200; ++draw) {
    Generator replay = gen;
    const Tensor out = transform(image, gen);
    REQUIRE(out.shape() == Shape{3, 5, 5});
    // Replaying the generator recovers the window, which must equal that crop of the padding.
    const std::int64_t top = replay.below(6);
    const std::int64_t left = replay.below(8);
    tops_seen[top] = true;
    REQUIRE(out.to_vector<float>() == crop(padded, top, left, 5, 5).to_vector<float>());
  }
  CHECK(std::count(tops_seen.begin(), tops_seen.end(), true) == 6);
  CHECK_THROWS_MATCHES(random_crop(13, 2)(image, gen), Error,
                       MessageContains({"random_crop", "larger than the padded image"}));
}

TEST_CASE("random_horizontal_flip flips with probability p", "[data][transforms]") {
  const Tensor image = golden().get("hflip_f32/input");
  const std::vector<float> flipped = hflip(image).to_vector<float>();
  Generator gen(3);
  CHECK(random_horizontal_flip(1.0)(image, gen).to_vector<float>() == flipped);
  CHECK(random_horizontal_flip(0.0)(image, gen).to_vector<float>() == image.to_vector<float>());
  int flips = 0;
  const Transform half = random_horizontal_flip();
  for (int i = 0; i < 400; ++i) flips += half(image, gen).to_vector<float>() == flipped;
  CHECK(flips > 150);
  CHECK(flips < 250);
}

TEST_CASE("random_resized_crop boxes follow torchvision's rules", "[data][transforms]") {
  Generator gen(11);
  const RandomResizedCropOptions options;
  for (int draw = 0; draw < 500; ++draw) {
    const CropBox box = random_resized_crop_box(375, 500, options, gen);
    REQUIRE(box.top >= 0);
    REQUIRE(box.left >= 0);
    REQUIRE(box.top + box.height <= 375);
    REQUIRE(box.left + box.width <= 500);
    const double area = static_cast<double>(box.height * box.width) / (375.0 * 500.0);
    REQUIRE(area >= 0.07);
    const double ratio = static_cast<double>(box.width) / static_cast<double>(box.height);
    REQUIRE(ratio >= 0.7);
    REQUIRE(ratio <= 1.4);
  }
  // A strip no ten draws can fit falls back to the central crop with the ratio clamped.
  const CropBox strip = random_resized_crop_box(10, 400, {{0.9, 1.0}, {0.75, 4.0 / 3}}, gen);
  CHECK(strip.height == 10);
  CHECK(strip.width == 13);
  CHECK(strip.top == 0);
  CHECK(strip.left == (400 - 13) / 2);

  const Tensor image = golden().get("resized_crop/input");
  Generator a(5);
  Generator b(5);
  const Tensor out = random_resized_crop(8)(image, a);
  CHECK(out.shape() == Shape{3, 8, 8});
  const CropBox box = random_resized_crop_box(10, 12, options, b);
  CHECK(out.to_vector<float>() ==
        resized_crop(image, box.top, box.left, box.height, box.width, 8, 8).to_vector<float>());
}

TEST_CASE("compose chains transforms and pipelines are seeded", "[data][transforms]") {
  const Tensor image = golden().get("to_tensor/input");  // u8 [3, 5, 7]
  const Transform pipeline = compose(
      {random_crop(4, 1), random_horizontal_flip(), to_tensor(), normalize({0.5f}, {0.25f})});
  Generator a(99);
  Generator b(99);
  const Tensor first = pipeline(image, a);
  CHECK(first.dtype() == DType::f32);
  CHECK(first.shape() == Shape{3, 4, 4});
  CHECK(first.to_vector<float>() == pipeline(image, b).to_vector<float>());
  const Tensor eval = compose({resize(10), center_crop(6), to_tensor()})(image, a);
  CHECK(eval.shape() == Shape{3, 6, 6});
  CHECK(compose({})(image, a).is_same(image));
}

TEST_CASE("transforms refuse bad arguments and images", "[data][transforms][errors]") {
  CHECK_THROWS_MATCHES(normalize({0.5f}, {0.0f}), Error, MessageContains({"normalize", "std"}));
  CHECK_THROWS_MATCHES(random_crop(0), Error, MessageContains({"random_crop", "positive"}));
  CHECK_THROWS_MATCHES(random_horizontal_flip(1.5), Error, MessageContains({"p must be"}));
  CHECK_THROWS_MATCHES(random_resized_crop(224, {{0.5, 0.1}, {0.75, 1.33}}), Error,
                       MessageContains({"random_resized_crop", "scale"}));
  CHECK_THROWS_MATCHES(compose({to_tensor(), Transform{}}), Error, MessageContains({"compose"}));
  const Tensor u8 = golden().get("to_tensor/input");
  CHECK_THROWS_MATCHES(normalize(u8, {0.5f}, {0.5f}), Error,
                       MessageContains({"normalize", "f32", "u8"}));
  CHECK_THROWS_MATCHES(normalize(to_float_image(u8), {0.1f, 0.2f}, {1.0f}), Error,
                       MessageContains({"normalize", "1 or 3 values"}));
  CHECK_THROWS_MATCHES(to_float_image(to_float_image(u8)), Error,
                       MessageContains({"to_float_image", "u8"}));
  CHECK_THROWS_MATCHES(resize(Tensor::zeros({4, 4}), 2, 2), Error,
                       MessageContains({"resize", "[C, H, W]"}));
  CHECK_THROWS_MATCHES(crop(u8, 0, 0, 0, 3), Error, MessageContains({"crop", "positive"}));
}
