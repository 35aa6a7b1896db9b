// The direct convolution (tensor/cpu/direct_conv.hpp) against convolution by definition, for its
// three uses (forward and weight gradient at any stride, input gradient at stride 1), one image in
// bands of output rows and several images stacked per call. Values are small integers, so every sum
// is exact in float and double alike and the results must be equal, not close. The scratch buffer
// starts as NaNs: a value the routine reads without having written it would show up, and so
// would a write past the size it asked for (a guard band after it must stay NaN).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "tensor/cpu/direct_conv.hpp"
#include "tensor/error.hpp"

using ds::Window;
using ds::cpu::DirectConv;
using Span = ds::cpu::PlaneWindow::Span;

namespace {

struct Case {
  const char* name;
  std::int64_t channels, out_channels, height, width;
  Window window;
  bool input_gradient;  // whether the input gradient runs this way too
};

// Channel counts that leave partial blocks of output channels and of weights, widths and
// heights that are not multiples of any register width, and widths that are.
const std::vector<Case> kCases{
    {"3x3 same", 3, 13, 6, 5, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"5x5 without padding", 2, 9, 9, 7, {5, 5, 1, 1, 0, 0, 1, 1}, true},
    {"3x3 dilation 2 same", 3, 5, 7, 17, {3, 3, 1, 1, 2, 2, 2, 2}, true},
    {"2x3, padding (1, 0), dilation (1, 2)", 4, 3, 5, 9, {2, 3, 1, 1, 1, 0, 1, 2}, true},
    {"3x3 same on a 1-high image", 2, 2, 1, 7, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    // Padding as wide as the window's reach: the input gradient's padding is 0.
    {"3x3 padding 2", 2, 3, 4, 6, {3, 3, 1, 1, 2, 2, 1, 1}, true},
    // Padding beyond the window's reach: forward only.
    {"3x3 padding 3", 2, 4, 4, 5, {3, 3, 1, 1, 3, 3, 1, 1}, false},
    {"1x1 padding 1", 3, 17, 3, 4, {1, 1, 1, 1, 1, 1, 1, 1}, false},
    // More input channels than one chunk of the forward's weights takes (113 for 3x3 in f32
    // on AVX-512, 56 in f64; 227 and 113 on AVX2).
    {"3x3 same, 300 input channels", 300, 13, 4, 5, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    // Output rows of whole registers (every path's float and double registers divide 16): the
    // blocks write the output and read the output gradient in place, two registers of a row or
    // of two rows at a time, and a last one alone.
    {"3x3 same, 32 wide", 3, 13, 5, 32, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"3x3 same, 16 wide", 2, 9, 5, 16, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"3x3 dilation 2 same, 16 wide", 2, 3, 3, 16, {3, 3, 1, 1, 2, 2, 2, 2}, true},
    // In place forward, through the buffer backward (whose output is the 20-wide input).
    {"5x5 without padding, 16 outputs wide", 2, 5, 6, 20, {5, 5, 1, 1, 0, 0, 1, 1}, true},
    {"3x3 same, 16 wide, 300 input channels", 300, 5, 3, 16, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    // Strides: the taps read phases of the padded input, here every phase of each axis or some.
    {"3x3 stride 2 same, even sizes", 3, 13, 8, 10, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    {"3x3 stride 2 same, odd sizes", 2, 5, 7, 9, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    {"3x3 stride 2 same, 16 outputs wide", 3, 9, 5, 32, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    {"3x3 stride 2 same, 12 outputs wide", 2, 3, 5, 24, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    {"7x7 stride 2 padding 3", 3, 4, 9, 11, {7, 7, 2, 2, 3, 3, 1, 1}, false},
    {"5x5 stride 3, padding 2, dilation 2", 2, 3, 11, 13, {5, 5, 3, 3, 2, 2, 2, 2}, false},
    {"2x3 stride (2, 1), padding (0, 1)", 2, 4, 6, 7, {2, 3, 2, 1, 0, 1, 1, 1}, false},
    {"2x2 stride 3 (phase 2 unread)", 2, 3, 7, 8, {2, 2, 3, 3, 0, 0, 1, 1}, false},
    {"1x1 stride 2", 4, 3, 5, 6, {1, 1, 2, 2, 0, 0, 1, 1}, false},
    {"3x3 stride 2 same on a 1x1 image", 2, 3, 1, 1, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    // Outputs whose rows are not whole registers but whose images are (on some path: 16, 8 or 4
    // floats, 8, 4 or 2 doubles): a copy per column of the window, computed in place, with
    // strides, dilation, no padding (24x24 from 28x28) and rows longer than a register (24).
    {"3x3 same on 8x8 maps", 3, 13, 8, 8, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"5x5 without padding, 24x24 from 28x28", 1, 5, 28, 28, {5, 5, 1, 1, 0, 0, 1, 1}, true},
    {"5x5 without padding, 8x8 from 12x12", 3, 4, 12, 12, {5, 5, 1, 1, 0, 0, 1, 1}, true},
    {"3x3 stride 2 same, 8x8 from 16x16", 2, 5, 16, 16, {3, 3, 2, 2, 1, 1, 1, 1}, false},
    {"3x3 stride 2, dilation 2, padding 2, 4x4 from 8x8",
     2,
     3,
     8,
     8,
     {3, 3, 2, 2, 2, 2, 2, 2},
     false},
    {"3x3 stride 3 padding 1, 4 wide, 12 high", 2, 3, 36, 12, {3, 3, 3, 3, 1, 1, 1, 1}, false},
    // Columns of the window that read only padding (the first and last: their planes stay zero).
    {"1x4 padding (0, 2) on a 1-wide image", 2, 3, 8, 1, {1, 4, 1, 1, 0, 2, 1, 1}, true},
    {"3x3 same on 4x4 maps", 2, 9, 4, 4, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"3x3 same, 2 wide, 16 high", 2, 3, 16, 2, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"5x5 same, 4 wide (taps two columns out)", 2, 3, 8, 4, {5, 5, 1, 1, 2, 2, 1, 1}, true},
    {"3x3 dilation 2 same, 8 wide", 2, 3, 6, 8, {3, 3, 1, 1, 2, 2, 2, 2}, true},
    {"1x3 padding (0, 1), 8 wide", 3, 4, 4, 8, {1, 3, 1, 1, 0, 1, 1, 1}, true},
    {"3x3 same, 8x8, 300 input channels", 300, 5, 8, 8, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"3x3 stride (2, 1), padding 1, 8 wide", 2, 5, 8, 8, {3, 3, 2, 1, 1, 1, 1, 1}, false},
    {"no input channels", 0, 3, 4, 4, {3, 3, 1, 1, 1, 1, 1, 1}, true},
    {"no output channels", 2, 0, 4, 4, {3, 3, 1, 1, 1, 1, 1, 1}, true},
};

std::vector<double> small_integers(std::size_t count, std::mt19937& gen) {
  std::uniform_int_distribution<int> value(-4, 4);
  std::vector<double> values(count);
  for (double& v : values) v = value(gen);
  return values;
}

template <typename T>
std::vector<T> as(const std::vector<double>& values) {
  return std::vector<T>(values.begin(), values.end());
}

// Calls fn(n, o, c, ki, kj, y, x, iy, ix) for every output (n, o, y, x) and tap whose input
// (iy, ix) lies inside the image.
template <typename Fn>
void for_each_product(const Case& k, std::int64_t images, Fn fn) {
  const Window& w = k.window;
  for (std::int64_t n = 0; n < images; ++n)
    for (std::int64_t o = 0; o < k.out_channels; ++o)
      for (std::int64_t c = 0; c < k.channels; ++c)
        for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
          for (std::int64_t kj = 0; kj < w.kernel_w; ++kj)
            for (std::int64_t y = 0; y < w.out_h(k.height); ++y)
              for (std::int64_t x = 0; x < w.out_w(k.width); ++x) {
                const std::int64_t iy = y * w.stride_h + ki * w.dilation_h - w.pad_h;
                const std::int64_t ix = x * w.stride_w + kj * w.dilation_w - w.pad_w;
                if (iy >= 0 && iy < k.height && ix >= 0 && ix < k.width)
                  fn(n, o, c, ki, kj, y, x, iy, ix);
              }
}

struct Indexing {
  const Case& k;
  std::int64_t input(std::int64_t n, std::int64_t c, std::int64_t iy, std::int64_t ix) const {
    return ((n * k.channels + c) * k.height + iy) * k.width + ix;
  }
  std::int64_t output(std::int64_t n, std::int64_t o, std::int64_t y, std::int64_t x) const {
    return ((n * k.out_channels + o) * k.window.out_h(k.height) + y) * k.window.out_w(k.width) + x;
  }
  std::int64_t weight(std::int64_t o, std::int64_t c, std::int64_t ki, std::int64_t kj) const {
    return ((o * k.channels + c) * k.window.kernel_h + ki) * k.window.kernel_w + kj;
  }
};

// The ways to cover `images` images of `rows` output rows with calls: every image alone in
// bands of `step` rows (those that make whole registers) and twice that and all rows, and groups of
// 1 to `images` whole images.
struct Call {
  std::int64_t first, count;
  Span band;
};
std::vector<std::vector<Call>> coverings(std::int64_t images, std::int64_t rows,
                                         std::int64_t step) {
  std::vector<std::vector<Call>> result;
  for (const std::int64_t band_rows : {step, 2 * step}) {
    std::vector<Call> calls;
    for (std::int64_t n = 0; n < images; ++n)
      for (std::int64_t begin = 0; begin < rows; begin += band_rows)
        calls.push_back({n, 1, {begin, std::min(rows, begin + band_rows)}});
    result.push_back(calls);
  }
  for (std::int64_t group = 1; group <= images; ++group) {
    std::vector<Call> calls;
    for (std::int64_t n = 0; n < images; n += group)
      calls.push_back({n, std::min(group, images - n), {0, rows}});
    result.push_back(calls);
  }
  return result;
}

// Scratch of `size` values and a guard band after it, all NaN.
constexpr std::size_t kGuard = 64;
template <typename T>
std::vector<T> nan_scratch(std::int64_t size) {
  return std::vector<T>(static_cast<std::size_t>(size) + kGuard,
                        std::numeric_limits<T>::quiet_NaN());
}
// Whether the guard band after the scratch is untouched.
template <typename T>
bool guard_intact(const std::vector<T>& scratch) {
  for (std::size_t i = scratch.size() - kGuard; i < scratch.size(); ++i)
    if (!std::isnan(scratch[i])) return false;
  return true;
}

// Runs one call of conv (the images from the call's first on) into a NaN output with a guard band
// after it, checks that the call wrote its own rows of its own images and nothing else (rows
// written in place straight into the output could spill into a neighbour's), and copies those
// rows into result [images, planes, rows, columns].
template <typename T>
void run_call(const DirectConv<T>& conv, const T* images, const Call& call, std::int64_t planes,
              std::int64_t rows, std::int64_t columns, std::vector<T>& result) {
  auto out = nan_scratch<T>(static_cast<std::int64_t>(result.size()));
  auto scratch = nan_scratch<T>(conv.buffer_size(call.band.end - call.band.begin, call.count));
  conv.run(images, call.count, out.data() + call.first * planes * rows * columns, call.band,
           scratch.data());
  CHECK(guard_intact(scratch));
  CHECK(guard_intact(out));
  bool only_its_own = true;
  for (std::size_t i = 0; i < result.size(); ++i) {
    const auto n = static_cast<std::int64_t>(i) / (planes * rows * columns);
    const auto y = static_cast<std::int64_t>(i) / columns % rows;
    if (n >= call.first && n < call.first + call.count && y >= call.band.begin && y < call.band.end)
      result[i] = out[i];
    else
      only_its_own = only_its_own && std::isnan(out[i]);
  }
  CHECK(only_its_own);
}

}  // namespace

TEMPLATE_TEST_CASE("a direct convolution equals convolution by definition", "[tensor][convolve]",
                   float, double) {
  using T = TestType;
  std::mt19937 gen(5);
  constexpr std::int64_t images = 3;
  for (const Case& k : kCases) {
    const Indexing at{k};
    const Window& w = k.window;
    const std::int64_t out_h = w.out_h(k.height), out_w = w.out_w(k.width);
    const auto x = small_integers(images * k.channels * k.height * k.width, gen);
    const auto weight = small_integers(k.out_channels * k.channels * w.kernel_h * w.kernel_w, gen);
    const auto g = small_integers(images * k.out_channels * out_h * out_w, gen);

    std::vector<double> out(g.size(), 0.0), grad_x(x.size(), 0.0), grad_w(weight.size(), 0.0);
    for_each_product(
        k, images,
        [&](auto n, auto o, auto c, auto ki, auto kj, auto y, auto xo, auto iy, auto ix) {
          const double wv = weight[at.weight(o, c, ki, kj)];
          out[at.output(n, o, y, xo)] += wv * x[at.input(n, c, iy, ix)];
          grad_x[at.input(n, c, iy, ix)] += wv * g[at.output(n, o, y, xo)];
          grad_w[at.weight(o, c, ki, kj)] += g[at.output(n, o, y, xo)] * x[at.input(n, c, iy, ix)];
        });

    REQUIRE(ds::cpu::direct_conv_applies(w));
    const auto xs = as<T>(x), weights = as<T>(weight), gs = as<T>(g);
    const auto conv =
        DirectConv<T>::forward(k.channels, k.height, k.width, w, k.out_channels, weights.data());
    REQUIRE(conv.out_h() == out_h);
    const auto weight_conv =
        DirectConv<T>::weight_gradient(k.channels, k.height, k.width, w, k.out_channels);
    for (const auto& calls : coverings(images, out_h, conv.band_step())) {
      INFO(k.name << ", " << calls.size() << " calls");
      std::vector<T> result(out.size(), T(-99));
      // Starts away from zero: the weight gradient is added on.
      std::vector<T> partial(weight.size(), T(0.5));
      for (const Call& call : calls) {
        run_call(conv, xs.data() + call.first * k.channels * k.height * k.width, call,
                 k.out_channels, out_h, out_w, result);
        auto scratch =
            nan_scratch<T>(weight_conv.buffer_size(call.band.end - call.band.begin, call.count));
        weight_conv.add_weight_gradient(xs.data() + call.first * k.channels * k.height * k.width,
                                        gs.data() + call.first * k.out_channels * out_h * out_w,
                                        call.count, call.band, partial.data(), scratch.data());
        CHECK(guard_intact(scratch));
      }
      CHECK(result == as<T>(out));
      std::vector<double> expected_partial = grad_w;
      for (double& v : expected_partial) v += 0.5;
      CHECK(partial == as<T>(expected_partial));
    }

    REQUIRE(ds::cpu::direct_conv_applies_to_input_gradient(w) == k.input_gradient);
    if (!k.input_gradient) continue;
    const auto backward = DirectConv<T>::input_gradient(k.channels, k.height, k.width, w,
                                                        k.out_channels, weights.data());
    const auto sizes =
        DirectConv<T>::input_gradient_sizes(k.channels, k.height, k.width, w, k.out_channels);
    REQUIRE(sizes.computed_positions() == backward.computed_positions());
    REQUIRE(sizes.band_step() == backward.band_step());
    REQUIRE(backward.out_h() == k.height);
    REQUIRE(backward.out_w() == k.width);
    for (const auto& calls : coverings(images, k.height, backward.band_step())) {
      INFO(k.name << ", input gradient, " << calls.size() << " calls");
      std::vector<T> result(x.size(), T(-99));
      for (const Call& call : calls)
        run_call(backward, gs.data() + call.first * k.out_channels * out_h * out_w, call,
                 k.channels, k.height, k.width, result);
      CHECK(result == as<T>(grad_x));
    }
  }
}

TEST_CASE("a direct input gradient applies to stride 1 only", "[tensor][convolve]") {
  CHECK(ds::cpu::direct_conv_applies(Window{3, 3, 2, 2, 1, 1, 1, 1}));
  CHECK_FALSE(ds::cpu::direct_conv_applies_to_input_gradient(Window{3, 3, 2, 2, 1, 1, 1, 1}));
  CHECK_FALSE(ds::cpu::direct_conv_applies_to_input_gradient(Window{3, 3, 1, 2, 1, 1, 1, 1}));
  CHECK_FALSE(ds::cpu::direct_conv_applies_to_input_gradient(Window{3, 3, 2, 1, 1, 1, 1, 1}));
}

TEMPLATE_TEST_CASE(
    "a copy per column where an image's output is whole registers and its rows are not",
    "[tensor][convolve]", float, double) {
  using T = TestType;
  // The register the library's build uses (direct_conv.cpp's Lanes).
#if defined(__AVX512F__)
  constexpr std::int64_t lanes = 64 / sizeof(T);
#elif defined(__AVX2__) && defined(__FMA__)
  constexpr std::int64_t lanes = 32 / sizeof(T);
#else
  constexpr std::int64_t lanes = 16 / sizeof(T);
#endif
  const Window same{3, 3, 1, 1, 1, 1, 1, 1};
  const auto band_step = [](std::int64_t height, std::int64_t width, const Window& w) {
    return DirectConv<T>::weight_gradient(2, height, width, w, 3).band_step();
  };
  // Bands of whole registers: lanes / gcd(out_w, lanes) rows.
  CHECK(band_step(lanes, 2, same) == lanes / 2);
  CHECK(band_step(lanes, 6, same) == lanes / std::gcd(std::int64_t{6}, lanes));
  CHECK(band_step(2, lanes, same) == 1);  // rows of whole registers: lines as they are
  CHECK(band_step(7, 7, same) == 1);      // 49 values are no whole register
  // A band of other rows is refused rather than leave outputs unwritten.
  const std::vector<T> weights(3 * 2 * 9, T(1));
  const auto conv = DirectConv<T>::forward(2, lanes, 2, same, 3, weights.data());
  if (conv.band_step() > 1) {
    const std::vector<T> images(2 * lanes * 2, T(1));
    std::vector<T> out(3 * lanes * 2), scratch(static_cast<std::size_t>(conv.buffer_size(1, 1)));
    CHECK_THROWS_AS(conv.run(images.data(), 1, out.data(), Span{0, 1}, scratch.data()), ds::Error);
  }
  CHECK(band_step(lanes + 2, 6, Window{3, 3, 1, 1, 0, 0, 1, 1}) ==
        lanes / std::gcd(std::int64_t{4}, lanes));
}
