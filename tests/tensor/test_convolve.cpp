// convolve is matmul(weight, unfold(x)) without the unfolded batch: the CPU back-end works image
// by image (when every thread gets an image) and otherwise takes the composed default; per
// image, windows run as direct convolutions where those pay (the input gradient at stride 1
// only), others on columns. All are
// checked against the two-op form and against each other, over the geometries whose index
// arithmetic differs: "same" padding (unfolded in runs; on a 16x16 map every step of it direct),
// strides, dilation, a copy per column of the window, a 1x1 window (the image is its own columns),
// padding wider than the image, taps that read only padding, and products with an empty dimension.
// The per-image weight gradient on columns is summed transposed where the taps outnumber the out
// channels four times
// ("3x3 same", "3x3 stride 2") and as is elsewhere ("1x1").
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "autograd/gradcheck.hpp"
#include "deepshift.hpp"
#include "default_agreement.hpp"
#include "support/golden.hpp"
#include "support/thread_count.hpp"
#include "tensor/composed.hpp"
#include "tensor/cpu/im2col.hpp"

using namespace ds;

namespace {

struct Geometry {
  const char* name;
  Shape input;  // [N, C, H, W] without the batch, which the test varies
  std::int64_t out_channels;
  Window window;
};

const std::vector<Geometry> kGeometries{
    {"3x3 same", {3, 6, 5}, 4, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"3x3 same on a 16x16 map", {3, 16, 16}, 5, {3, 3, 1, 1, 1, 1, 1, 1}},
    // Images of whole registers whose rows are not (8x8 floats on AVX-512, 4x4 on AVX-512 and
    // AVX2): a copy per column of the window, computed in place.
    {"3x3 same on an 8x8 map", {4, 8, 8}, 5, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"3x3 same on a 4x4 map", {4, 4, 4}, 3, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"3x3 stride 2", {2, 7, 7}, 3, {3, 3, 2, 2, 1, 1, 1, 1}},
    {"3x3 dilation 2 same", {2, 6, 7}, 3, {3, 3, 1, 1, 2, 2, 2, 2}},
    {"2x3 stride (2, 1)", {2, 7, 8}, 3, {2, 3, 2, 1, 1, 0, 1, 2}},
    {"1x1", {5, 4, 3}, 3, {1, 1, 1, 1, 0, 0, 1, 1}},
    {"1x1 stride 2", {5, 5, 5}, 2, {1, 1, 2, 2, 0, 0, 1, 1}},
    {"3x3 same on a 1-wide image", {2, 4, 1}, 2, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"padding wider than the image", {2, 2, 3}, 2, {3, 3, 1, 1, 4, 4, 1, 1}},
    {"3x3 same on a 1-high image", {2, 1, 4}, 2, {3, 3, 1, 1, 1, 1, 1, 1}},
    // out_w == W with taps whose rows all read padding (out_h = 1)
    {"5x3 padding 1", {2, 3, 4}, 2, {5, 3, 1, 1, 1, 1, 1, 1}},
    // Rows of output from padding alone: the input gradient has no rows.
    {"padding around an empty image", {1, 0, 5}, 2, {3, 3, 1, 1, 2, 2, 1, 1}},
    {"no input channels", {0, 8, 8}, 3, {3, 3, 1, 1, 1, 1, 1, 1}},
    {"no output channels", {2, 8, 8}, 0, {3, 3, 1, 1, 1, 1, 1, 1}},
};

Shape with_batch(std::int64_t batch, const Shape& image) {
  return {batch, image[0], image[1], image[2]};
}

void require_close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  const auto close = test::allclose(actual, expected, 1e-12, 1e-12);
  INFO(what << ": " << close.message);
  REQUIRE(close.ok);
}

}  // namespace

TEST_CASE("convolve equals the product with the unfolded input, and so do its gradients",
          "[tensor][convolve]") {
  Generator gen(3);
  for (const Geometry& geometry : kGeometries)
    for (std::int64_t batch : {1, 3, 5}) {
      const std::string what = std::string(geometry.name) + ", batch " + std::to_string(batch);
      const Window& w = geometry.window;
      const std::int64_t taps = geometry.input[0] * w.kernel_h * w.kernel_w;
      const Tensor x = randn(with_batch(batch, geometry.input), DType::f64, gen).requires_grad_();
      const Tensor weight = randn({geometry.out_channels, taps}, DType::f64, gen).requires_grad_();
      const Tensor out = convolve(x, weight, w);
      const Tensor expected = matmul(weight, unfold(x, w));
      require_close(out, expected, what + ", forward");

      const Tensor g = randn(out.shape(), DType::f64, gen);
      out.backward(g);
      const Tensor grad_x = x.grad(), grad_weight = weight.grad();
      x.set_grad(Tensor());
      weight.set_grad(Tensor());
      expected.backward(g);
      require_close(grad_x, x.grad(), what + ", input gradient");
      require_close(grad_weight, weight.grad(), what + ", weight gradient");
    }
}

TEST_CASE("the CPU convolution agrees with the back-end's composed default", "[tensor][convolve]") {
  // Two threads, so that the batch of 7 takes the per-image paths (direct and columns) on any
  // machine, in groups of images shared out to both.
  const test::ThreadCount two_threads(2);
  Generator gen(4);
  Backend& cpu = backend_for(Device::cpu());
  for (const Geometry& geometry : kGeometries) {
    const Window& w = geometry.window;
    const std::int64_t taps = geometry.input[0] * w.kernel_h * w.kernel_w;
    const Tensor x = randn(with_batch(7, geometry.input), DType::f32, gen);
    const Tensor weight = randn({geometry.out_channels, taps}, DType::f32, gen);
    const Shape out_shape{7, geometry.out_channels,
                          w.out_h(geometry.input[1]) * w.out_w(geometry.input[2])};
    INFO(geometry.name);
    test::require_default_agreement(
        {[&](const Tensor& out) { cpu.conv2d(x, weight, w, out); },
         [&](const Tensor& out) { cpu.Backend::conv2d(x, weight, w, out); },
         [&](const Tensor& g, const Tensor& gx, const Tensor& gw) {
           cpu.conv2d_backward(x, weight, g, w, gx, gw);
         },
         [&](const Tensor& g, const Tensor& gx, const Tensor& gw) {
           cpu.Backend::conv2d_backward(x, weight, g, w, gx, gw);
         }},
        x, weight, out_shape, gen);
  }
}

TEST_CASE("a large image's convolution runs in bands of output rows and agrees with the default",
          "[tensor][convolve]") {
  // Columns over the 8 MB band limit (the backward's gradients folded band after band): 3x3 "same"
  // (rows of 576 f32 taps by 64 positions: two bands of 32 rows), pointwise (the band a column
  // block of the image), strided and dilated, and in f64 (8-byte elements: bands of 22, 22 and 20
  // rows).
  Generator gen(12);
  Backend& cpu = backend_for(Device::cpu());
  const std::vector<std::pair<Geometry, DType>> cases{
      {{"3x3 same, 64 channels", {64, 64, 64}, 8, {3, 3, 1, 1, 1, 1, 1, 1}}, DType::f32},
      {{"1x1, 512 channels", {512, 80, 80}, 4, {1, 1, 1, 1, 0, 0, 1, 1}}, DType::f32},
      {{"3x3 stride 2 dilation 2", {128, 131, 97}, 4, {3, 3, 2, 2, 2, 2, 2, 2}}, DType::f32},
      // A copy per column (8 floats are no AVX-512 register) banded in whole registers: 1034
      // rows in 2 to 6 bands would take an odd number of rows each, rounded up to even.
      {{"3x3 same, 8 wide, 256 channels", {256, 1034, 8}, 4, {3, 3, 1, 1, 1, 1, 1, 1}}, DType::f32},
      {{"3x3 same in f64", {64, 64, 64}, 4, {3, 3, 1, 1, 1, 1, 1, 1}}, DType::f64},
  };
  for (const auto& [geometry, dtype] : cases) {
    const Window& w = geometry.window;
    const std::int64_t taps = geometry.input[0] * w.kernel_h * w.kernel_w;
    for (const std::int64_t batch : {1, 2}) {
      const Tensor x = randn(with_batch(batch, geometry.input), dtype, gen);
      const Tensor weight = randn({geometry.out_channels, taps}, dtype, gen);
      const Shape out_shape{batch, geometry.out_channels,
                            w.out_h(geometry.input[1]) * w.out_w(geometry.input[2])};
      const Tensor out = Tensor::empty(out_shape, dtype),
                   expected = Tensor::empty(out_shape, dtype);
      cpu.conv2d(x, weight, w, out);
      cpu.Backend::conv2d(x, weight, w, expected);
      INFO(geometry.name << ", batch " << batch);
      CHECK(test::allclose(out, expected, 1e-4, 1e-4).ok);

      const Tensor g = randn(out_shape, dtype, gen);
      const Tensor grad_x = Tensor::empty(x.shape(), dtype);
      const Tensor grad_x_default = Tensor::empty(x.shape(), dtype);
      const Tensor grad_w = Tensor::empty(weight.shape(), dtype);
      const Tensor grad_w_default = Tensor::empty(weight.shape(), dtype);
      cpu.conv2d_backward(x, weight, g, w, grad_x, grad_w);
      cpu.Backend::conv2d_backward(x, weight, g, w, grad_x_default, grad_w_default);
      CHECK(test::allclose(grad_x, grad_x_default, 1e-4, 1e-4).ok);
      CHECK(test::allclose(grad_w, grad_w_default, 1e-3, 1e-3).ok);
    }
  }
}

namespace {

// Hands every primitive to the CPU back-end and records the largest column buffer (im2col's
// output or col2im's input) of the calls, so that a test can see what the composed
// convolution held at once.
class ColumnRecorder final : public Backend {
 public:
  std::int64_t largest_columns = 0;

  std::shared_ptr<void> allocate(std::size_t nbytes, Device device) override {
    return cpu.allocate(nbytes, device);
  }
  void copy(const Tensor& src, const Tensor& dst) override { cpu.copy(src, dst); }
  void copy_to_host(const Tensor& src, void* host) override { cpu.copy_to_host(src, host); }
  void copy_from_host(const void* host, const Tensor& dst) override {
    cpu.copy_from_host(host, dst);
  }
  void fill(const Tensor& dst, double value) override { cpu.fill(dst, value); }
  void unary(UnaryOp op, const Tensor& in, const Tensor& out) override { cpu.unary(op, in, out); }
  void clamp(const Tensor& in, double low, double high, const Tensor& out) override {
    cpu.clamp(in, low, high, out);
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override {
    cpu.binary(op, a, b, out);
  }
  void where(const Tensor& condition, const Tensor& a, const Tensor& b,
             const Tensor& out) override {
    cpu.where(condition, a, b, out);
  }
  void reduce(ReduceOp op, const Tensor& in, int reduced_dims, const Tensor& out) override {
    cpu.reduce(op, in, reduced_dims, out);
  }
  void softmax(const Tensor& in, bool log, const Tensor& out) override {
    cpu.softmax(in, log, out);
  }
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override {
    cpu.matmul(a, b, out);
  }
  void im2col(const Tensor& in, const Window& window, double pad_value,
              const Tensor& out) override {
    largest_columns = std::max(largest_columns, out.numel());
    cpu.im2col(in, window, pad_value, out);
  }
  void col2im(const Tensor& cols, const Window& window, const Tensor& out) override {
    largest_columns = std::max(largest_columns, cols.numel());
    cpu.col2im(cols, window, out);
  }
  void batch_norm(const BatchNormForward& pass) override { cpu.batch_norm(pass); }
  void batch_norm_backward(const BatchNormBackward& pass) override {
    cpu.batch_norm_backward(pass);
  }

 private:
  Backend& cpu = backend_for(Device::cpu());
};

}  // namespace

// The composed default unfolds as many images at a time as fit its workspace: a batch of 7 in
// groups of 1, 3 (the last group short) and 7, each time with the result of the whole batch at
// once, and never more columns than the workspace holds.
TEST_CASE("the composed convolution works in groups of images that fit its workspace",
          "[tensor][convolve]") {
  Generator gen(7);
  for (const Geometry& geometry : {kGeometries[0], kGeometries[1], kGeometries[4]}) {
    const Window& w = geometry.window;
    const std::int64_t taps = geometry.input[0] * w.kernel_h * w.kernel_w;
    const std::int64_t positions = w.out_h(geometry.input[1]) * w.out_w(geometry.input[2]);
    const Shape out_shape{7, geometry.out_channels, positions};
    const Tensor x = randn(with_batch(7, geometry.input), DType::f64, gen);
    const Tensor weight = randn({geometry.out_channels, taps}, DType::f64, gen);
    const Tensor g = randn(out_shape, DType::f64, gen);
    const Tensor out = Tensor::empty(out_shape, DType::f64);
    const Tensor grad_x = Tensor::empty(x.shape(), DType::f64);
    const Tensor grad_w = Tensor::empty(weight.shape(), DType::f64);
    ColumnRecorder whole;
    composed_conv2d(whole, x, weight, w, out, kConvWorkspaceBytes);
    composed_conv2d_backward(whole, x, weight, g, w, grad_x, grad_w, kConvWorkspaceBytes);
    CHECK(whole.largest_columns == 7 * taps * positions);
    // Forward holds an image's columns, backward also its weight gradient and a copy of it.
    const std::int64_t columns_bytes = taps * positions * 8;
    const std::int64_t backward_bytes = columns_bytes + 2 * geometry.out_channels * taps * 8;
    for (const std::int64_t images : {1, 3}) {
      INFO(geometry.name << ", " << images << " images at a time");
      const Tensor out_grouped = Tensor::full(out_shape, 5.0, DType::f64);
      const Tensor grad_x_grouped = Tensor::full(x.shape(), 5.0, DType::f64);
      const Tensor grad_w_grouped = Tensor::full(weight.shape(), 5.0, DType::f64);
      ColumnRecorder forward, backward;
      composed_conv2d(forward, x, weight, w, out_grouped, images * columns_bytes);
      composed_conv2d_backward(backward, x, weight, g, w, grad_x_grouped, grad_w_grouped,
                               images * backward_bytes);
      CHECK(forward.largest_columns == images * taps * positions);
      CHECK(backward.largest_columns == images * taps * positions);
      require_close(out_grouped, out, "forward");
      require_close(grad_x_grouped, grad_x, "input gradient");
      require_close(grad_w_grouped, grad_w, "weight gradient");
    }
  }
  // An empty batch still writes a zero weight gradient.
  ColumnRecorder empty;
  const Tensor grad_w = Tensor::full({3, 18}, 5.0);
  composed_conv2d_backward(empty, Tensor::zeros({0, 2, 4, 4}), Tensor::zeros({3, 18}),
                           Tensor::zeros({0, 3, 16}), kGeometries[0].window, Tensor(), grad_w, 1);
  CHECK(grad_w.to_vector<float>() == std::vector<float>(18 * 3, 0.0f));
}

namespace {

// unfold by hand: columns[n][(c * kh + ki) * kw + kj][oh * out_w + ow], padding reading `pad`.
std::vector<double> unfold_by_hand(const std::vector<double>& x, const Shape& s, const Window& w,
                                   double pad) {
  const std::int64_t out_h = w.out_h(s[2]), out_w = w.out_w(s[3]);
  std::vector<double> columns;
  for (std::int64_t n = 0; n < s[0]; ++n)
    for (std::int64_t c = 0; c < s[1]; ++c)
      for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj)
          for (std::int64_t oh = 0; oh < out_h; ++oh)
            for (std::int64_t ow = 0; ow < out_w; ++ow) {
              const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
              const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
              const bool inside = ih >= 0 && ih < s[2] && iw >= 0 && iw < s[3];
              columns.push_back(inside ? x[((n * s[1] + c) * s[2] + ih) * s[3] + iw] : pad);
            }
  return columns;
}

// fold by hand: the adjoint of unfold, each column entry added onto the pixel it came from.
std::vector<double> fold_by_hand(const std::vector<double>& columns, const Shape& s,
                                 const Window& w) {
  const std::int64_t out_h = w.out_h(s[2]), out_w = w.out_w(s[3]);
  std::vector<double> image(s[0] * s[1] * s[2] * s[3], 0.0);
  std::size_t at = 0;
  for (std::int64_t n = 0; n < s[0]; ++n)
    for (std::int64_t c = 0; c < s[1]; ++c)
      for (std::int64_t ki = 0; ki < w.kernel_h; ++ki)
        for (std::int64_t kj = 0; kj < w.kernel_w; ++kj)
          for (std::int64_t oh = 0; oh < out_h; ++oh)
            for (std::int64_t ow = 0; ow < out_w; ++ow, ++at) {
              const std::int64_t ih = oh * w.stride_h - w.pad_h + ki * w.dilation_h;
              const std::int64_t iw = ow * w.stride_w - w.pad_w + kj * w.dilation_w;
              if (ih >= 0 && ih < s[2] && iw >= 0 && iw < s[3])
                image[((n * s[1] + c) * s[2] + ih) * s[3] + iw] += columns[at];
            }
  return image;
}

}  // namespace

// The CPU unfold and fold copy rows of a few common widths (8, 16, 24, 32) as fixed-size moves:
// every such width, with and without padding at the row ends, strided, dilated and not.
TEST_CASE("unfold and fold equal im2col by hand at every row width", "[tensor][convolve]") {
  Generator gen(6);
  for (const std::int64_t out_w : {7, 8, 16, 24, 32, 33})
    // Valid, "same" (rows copied as runs), padded but not "same" (padding at the row ends of
    // copied rows), dilated, strided, strided and padded.
    for (const Window& w : {Window{5, 5, 1, 1, 0, 0, 1, 1}, Window{3, 3, 1, 1, 1, 1, 1, 1},
                            Window{5, 5, 1, 1, 1, 1, 1, 1}, Window{3, 3, 1, 1, 2, 0, 1, 1},
                            Window{2, 3, 1, 1, 0, 1, 2, 1}, Window{3, 3, 2, 2, 0, 0, 1, 1},
                            Window{3, 3, 2, 2, 1, 1, 1, 1}}) {
      // An input width that gives out_w output columns with this window.
      const std::int64_t width =
          (out_w - 1) * w.stride_w + w.dilation_w * (w.kernel_w - 1) + 1 - 2 * w.pad_w;
      const Shape shape{2, 3, 9, width};
      INFO("out_w " << out_w << ", window " << w.kernel_h << "x" << w.kernel_w << " stride "
                    << w.stride_w << " pad " << w.pad_h << "," << w.pad_w);
      REQUIRE(w.out_w(width) == out_w);
      for (const DType dtype : {DType::f32, DType::f64}) {
        // Small integers keep every sum exact, so fold's order of additions does not matter.
        const Tensor x = floor(rand(shape, DType::f64, gen) * 8.0).to(dtype);
        const Tensor columns = unfold(x, w, -2.0);
        CHECK(test::values_of(columns) == unfold_by_hand(test::values_of(x), shape, w, -2.0));
        const Tensor g = floor(rand(columns.shape(), DType::f64, gen) * 8.0).to(dtype);
        CHECK(test::values_of(fold(g, w, shape[2], shape[3])) ==
              fold_by_hand(test::values_of(g), shape, w));
      }
    }
}

TEST_CASE("a band of output rows unfolds as those rows of the whole plane's unfold",
          "[tensor][convolve]") {
  std::vector<Geometry> geometries = kGeometries;
  geometries.push_back({"3x3 stride 2 dilation 2", {1, 11, 9}, 1, {3, 3, 2, 2, 2, 2, 2, 2}});
  geometries.push_back({"same, rows as runs", {1, 12, 10}, 1, {3, 3, 1, 1, 1, 1, 1, 1}});
  for (const Geometry& geometry : geometries) {
    const std::int64_t height = geometry.input[1], width = geometry.input[2];
    const cpu::PlaneWindow window(height, width, geometry.window);
    const std::int64_t out_h = geometry.window.out_h(height), out_w = geometry.window.out_w(width);
    std::vector<std::int32_t> plane(static_cast<std::size_t>(height * width));
    for (std::size_t i = 0; i < plane.size(); ++i) plane[i] = static_cast<std::int32_t>(i + 1);
    std::vector<std::int32_t> whole(static_cast<std::size_t>(window.rows_size()));
    window.unfold(plane.data(), -7, whole.data());
    const std::int64_t taps = geometry.window.kernel_h * geometry.window.kernel_w;
    for (std::int64_t begin = 0; begin < out_h; ++begin)
      for (std::int64_t end = begin + 1; end <= out_h; ++end) {
        // Room for 3 more values beside each tap's positions, which must stay untouched.
        const std::int64_t positions = (end - begin) * out_w, stride = positions + 3;
        std::vector<std::int32_t> band(static_cast<std::size_t>(taps * stride), 99);
        window.unfold(plane.data(), -7, band.data(), stride, {begin, end});
        std::vector<std::int32_t> expected(band.size(), 99);
        for (std::int64_t t = 0; t < taps; ++t)
          std::copy_n(whole.begin() + t * out_h * out_w + begin * out_w, positions,
                      expected.begin() + t * stride);
        INFO(geometry.name << ", output rows " << begin << " to " << end);
        REQUIRE(band == expected);
      }
  }
}

TEST_CASE("convolve's gradients match finite differences", "[tensor][convolve][gradcheck]") {
  Generator gen(5);
  for (const Geometry& geometry : {kGeometries[0], kGeometries[1], kGeometries[4]}) {
    const Window w = geometry.window;
    const std::int64_t taps = geometry.input[0] * w.kernel_h * w.kernel_w;
    const std::vector<Tensor> inputs{
        randn(with_batch(3, geometry.input), DType::f64, gen).requires_grad_(),
        randn({geometry.out_channels, taps}, DType::f64, gen).requires_grad_()};
    const auto result = autograd::gradcheck(
        [w](const std::vector<Tensor>& in) { return convolve(in[0], in[1], w); }, inputs);
    INFO(geometry.name << ": " << result.message);
    CHECK(result.ok);
  }
}

TEST_CASE("convolve refuses operands that do not fit", "[tensor][convolve][errors]") {
  const Window w{3, 3, 1, 1, 1, 1, 1, 1};
  CHECK_THROWS_WITH(convolve(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({3, 17}), w),
                    Catch::Contains("[3, 17]") && Catch::Contains("[O, C * 9]"));
  CHECK_THROWS_WITH(convolve(Tensor::zeros({1, 2, 4, 4}), Tensor::zeros({3, 18}, DType::f64), w),
                    Catch::Contains("convolve"));
  CHECK_THROWS_WITH(
      convolve(Tensor::zeros({1, 2, 1, 1}), Tensor::zeros({3, 18}), Window{3, 3, 1, 1, 0, 0, 1, 1}),
      Catch::Contains("does not fit a 1x1 input"));
  // Wider than the input by less than the stride: no position, as in PyTorch.
  CHECK_THROWS_WITH(
      convolve(Tensor::zeros({1, 2, 2, 2}), Tensor::zeros({3, 18}), Window{3, 3, 2, 2, 0, 0, 1, 1}),
      Catch::Contains("does not fit a 2x2 input"));
}
