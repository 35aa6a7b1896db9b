// The shift kernels against their baselines, each pair timed interleaved on the same shapes
// (median of several repeats): (a) batch-1 linear vs Eigen FP32 GEMV with the packed weights'
// effective GB/s, (b) batch-64 linear vs Eigen SGEMM, (c) resnet20 CIFAR inference at batch 128
// (and its convolution shapes one by one), a convolution of one large image and an MNIST training
// step, kernel vs float path, (d) a per-term scalar shift kernel written the way the original's
// CPU kernel works, and naive float loops without BLAS. Usage:
//   bench_kernels [gemv] [gemm] [resnet] [layers] [image] [train] [scalar]   (all without one)
// Figures are printed, never asserted: a benchmark does not fail on speed.
// GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsics when Eigen's
// GEMM packing is inlined here; they are not about this file's code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <omp.h>

#include <Eigen/Dense>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "autograd/grad_mode.hpp"
#include "bench/timing.hpp"
#include "nn/functional.hpp"
#include "nn/models/mnist.hpp"
#include "nn/models/zoo.hpp"
#include "random_layers.hpp"
#include "shiftops/convert.hpp"
#include "shiftops/kernel.hpp"
#include "tensor/random.hpp"

using namespace ds;
using namespace ds::shift;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace {

void print_pair(const std::string& what, const std::string& ours_name, double ours,
                const std::string& base_name, double base, const std::string& extra = "") {
  std::printf("%-44s %-22s %9.3f ms  %-22s %9.3f ms  speed-up %6.2fx %s\n", what.c_str(),
              ours_name.c_str(), ours * 1e3, base_name.c_str(), base * 1e3, base / ours,
              extra.c_str());
}

PackedWeights random_packed(std::int64_t rows, std::int64_t cols, int weight_bits) {
  std::mt19937_64 rng(42);
  const test::LayerFormat format{weight_bits, ShiftType::PS, {8, true}};
  return pack_weights(test::random_shift_weights(rng, format, {rows, cols}), Tensor(), 0,
                      weight_bits <= 4);
}

RowMatrix random_matrix(std::int64_t rows, std::int64_t cols) {
  return RowMatrix::Random(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
}

void bench_gemv(std::int64_t n, int weight_bits, ActivationFormat format) {
  const PackedWeights w = random_packed(n, n, weight_bits);
  std::mt19937_64 rng(1);
  const auto x = test::random_activations(rng, format, n);
  std::vector<std::int64_t> y(static_cast<std::size_t>(n));
  const RowMatrix a = random_matrix(n, n);
  const Eigen::VectorXf v = Eigen::VectorXf::Random(static_cast<Eigen::Index>(n));
  Eigen::VectorXf out(static_cast<Eigen::Index>(n));
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format);
  const auto t = bench::interleaved_medians(
      {[&] { linear_int(prepared, x.data(), 1, y.data()); }, [&] { out.noalias() = a * v; }},
      {15, n >= 4096 ? 3 : 20});
  const double gb = static_cast<double>(w.codes.size()) / t[0] / 1e9;
  const std::string what = "(a) linear b=1 " + std::to_string(n) + "x" + std::to_string(n) + " w" +
                           std::to_string(weight_bits) + " a" + std::to_string(format.bits);
  char extra[96];
  std::snprintf(extra, sizeof extra, "[%d-bit codes, %s, %.1f GB/s packed; FP32 %.1f GB/s]",
                w.code_bits, accumulator_name(choose_accumulator(w, format, LoopForm::dot)), gb,
                4.0 * n * n / t[1] / 1e9);
  print_pair(what, "shift kernel", t[0], "Eigen FP32 GEMV", t[1], extra);
}

void bench_gemm(int weight_bits, ActivationFormat format) {
  const std::int64_t n = 1024, batch = 64;
  const PackedWeights w = random_packed(n, n, weight_bits);
  std::mt19937_64 rng(2);
  const auto x = test::random_activations(rng, format, batch * n);
  std::vector<std::int64_t> y(static_cast<std::size_t>(batch * n));
  const RowMatrix a = random_matrix(n, n), b = random_matrix(batch, n);
  RowMatrix out(batch, n);
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format);
  const auto t = bench::interleaved_medians(
      {[&] { linear_int(prepared, x.data(), batch, y.data()); },
       [&] { out.noalias() = b * a.transpose(); },
       [&] { linear_int(w, x.data(), batch, format, y.data(), kernel_path()); }},
      {15, 5});
  char extra[96];
  std::snprintf(extra, sizeof extra, "[%s; %.1f G shift-adds/s vs %.1f GFLOP/s]",
                accumulator_name(choose_accumulator(w, format, LoopForm::columns)),
                batch * n * n / t[0] / 1e9, 2.0 * batch * n * n / t[1] / 1e9);
  const std::string what = "(b) linear b=64 1024x1024 w" + std::to_string(weight_bits) + " a" +
                           std::to_string(format.bits);
  print_pair(what, "shift kernel", t[0], "Eigen SGEMM", t[1], extra);
  // What a call costs when the weights change every time (training through the kernel).
  print_pair(what, "unprepared weights", t[2], "Eigen SGEMM", t[1]);
}

nn::ModulePtr shift_model(const std::string& dataset, const std::string& name, int weight_bits,
                          int activation_integer, int activation_fraction) {
  manual_seed(3);
  nn::ModulePtr model =
      dataset == "mnist" ? nn::models::conv_mnist() : nn::models::create(dataset, name);
  ConversionOptions options;
  options.shift.weight_bits = weight_bits;
  options.shift.activation = {activation_integer, activation_fraction};
  options.convert_weights = true;
  convert_to_shift(*model, kConvertAll, options);
  round_shift_weights(*model);
  return model;
}

// resnet20's formats (weight bits, integer and fraction activation bits): the deployment format
// (4-bit codes, 8-bit activations) and the trainers' default.
constexpr std::tuple<int, int, int> kResnetFormats[] = {{4, 4, 4}, {5, 16, 16}};

void bench_resnet() {
  for (const auto& [bits, integer, fraction] : kResnetFormats) {
    nn::ModulePtr model = shift_model("cifar10", "resnet20", bits, integer, fraction);
    model->eval();
    manual_seed(4);
    const Tensor x = randn({128, 3, 32, 32});
    NoGradGuard no_grad;
    const auto t = bench::interleaved_medians({[&] {
                                                 use_kernel(*model, true);
                                                 model->forward(x);
                                               },
                                               [&] {
                                                 use_kernel(*model, false);
                                                 model->forward(x);
                                               }},
                                              {5, 1});
    print_pair("(c) resnet20 CIFAR inference b=128 w" + std::to_string(bits) + " a" +
                   std::to_string(integer + fraction),
               "kernel path", t[0], "float path", t[1]);
  }
}

// resnet20's convolution shapes one by one at batch 128 (a stage's 3x3 layers, and the strided
// first layers of stages 2 and 3), through the kernel on prepared weights and through the float
// conv2d on the same rounded weights and fixed-point input: where (c)'s time goes.
void bench_resnet_layers() {
  struct Layer {
    std::int64_t in, out, size, stride;
  };
  for (const auto& [bits, integer, fraction] : kResnetFormats) {
    const ActivationBits activation{integer, fraction};
    for (const Layer& l : {Layer{16, 16, 32, 1}, Layer{16, 32, 32, 2}, Layer{32, 32, 16, 1},
                           Layer{32, 64, 16, 2}, Layer{64, 64, 8, 1}}) {
      std::mt19937_64 rng(5);
      const test::LayerFormat format{bits, ShiftType::PS, activation_format(activation)};
      const Tensor weight = test::random_shift_weights(rng, format, {l.out, l.in, 3, 3});
      const PreparedWeights prepared(std::make_shared<const PackedWeights>(
                                         pack_weights(weight, Tensor(), fraction, bits <= 4)),
                                     activation_format(activation));
      manual_seed(6);
      const Tensor x = fixed_point(randn({128, l.in, l.size, l.size}), activation);
      nn::functional::Conv2dParams params;
      params.stride_h = params.stride_w = l.stride;
      params.pad_h = params.pad_w = 1;
      NoGradGuard no_grad;
      const auto t =
          bench::interleaved_medians({[&] { shift_conv2d(x, prepared, 3, 3, params, activation); },
                                      [&] { nn::functional::conv2d(x, weight, Tensor(), params); }},
                                     {7, 1});
      print_pair("(c) layer " + std::to_string(l.in) + "->" + std::to_string(l.out) + " " +
                     std::to_string(l.size) + "x" + std::to_string(l.size) + " s" +
                     std::to_string(l.stride) + " w" + std::to_string(bits) + " a" +
                     std::to_string(integer + fraction),
                 "kernel", t[0], "float conv2d", t[1]);
    }
  }
}

// One large image (segmentation-sized): the kernel convolves it in bands of output rows whose
// column matrix stays in the cache (kernel::conv_items), the float path in bands of 8 MB of
// columns (the whole image's would take 600 MB).
void bench_large_image() {
  std::mt19937_64 rng(7);
  const ActivationBits bits{4, 4};
  const test::LayerFormat format{4, ShiftType::PS, activation_format(bits)};
  const Tensor weight = test::random_shift_weights(rng, format, {64, 64, 3, 3});
  const PreparedWeights prepared(
      std::make_shared<const PackedWeights>(pack_weights(weight, Tensor(), 0, true)),
      format.activation, kernel_path());
  manual_seed(6);
  const Tensor x = randn({1, 64, 512, 512});
  const nn::functional::Conv2dParams same{1, 1, 1, 1, 1, 1, 1};
  NoGradGuard no_grad;
  const auto t =
      bench::interleaved_medians({[&] { shift_conv2d(x, prepared, 3, 3, same, bits); },
                                  [&] { nn::functional::conv2d(x, weight, Tensor(), same); }},
                                 {3, 1});
  print_pair("(c) conv 3x3 64->64, one 512x512 image, w4 a8", "kernel", t[0], "float conv2d", t[1]);
}

void bench_train() {
  nn::ModulePtr model = shift_model("mnist", "", 5, 16, 16);
  model->train();
  manual_seed(5);
  const Tensor x = randn({64, 1, 28, 28});
  std::vector<std::int32_t> labels(64);
  for (int i = 0; i < 64; ++i) labels[static_cast<std::size_t>(i)] = i % 10;
  const Tensor target = Tensor::from_vector(labels, {64});
  auto step = [&](bool kernel) {
    use_kernel(*model, kernel);
    model->zero_grad();
    nn::functional::nll_loss(model->forward(x), target).backward();
  };
  const auto t = bench::interleaved_medians({[&] { step(true); }, [&] { step(false); }}, {7, 1});
  print_pair("(c) MNIST conv training step b=64 (fwd+bwd)", "kernel forward", t[0], "float path",
             t[1]);
}

// The original's CPU kernel, term by term: weights packed several to a 32-bit word as (sign,
// shift) fields, each term unpacked, shifted right on its own (flooring every term) and added.
struct OriginalStyleWeights {
  std::vector<std::uint32_t> words;  // 4 weights per word: 1 sign-present, 1 negative, 6 shift
  std::int64_t rows, cols, words_per_row;
};

OriginalStyleWeights original_style(const PackedWeights& w) {
  OriginalStyleWeights o{{}, w.rows, w.cols, (w.cols + 3) / 4};
  o.words.assign(static_cast<std::size_t>(o.rows * o.words_per_row), 0);
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t c = 0; c < w.cols; ++c) {
      const int s = w.sign(r, c);
      const std::uint32_t field =
          s == 0 ? 0u : 0x80u | (s < 0 ? 0x40u : 0u) | static_cast<std::uint32_t>(w.k(r, c));
      o.words[static_cast<std::size_t>(r * o.words_per_row + c / 4)] |= field << (8 * (c % 4));
    }
  return o;
}

void original_style_linear(const OriginalStyleWeights& w, const std::int32_t* x, std::int64_t batch,
                           std::int64_t* y) {
#pragma omp parallel for collapse(2)
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t r = 0; r < w.rows; ++r) {
      std::int64_t total = 0;
      for (std::int64_t c = 0; c < w.cols; ++c) {
        const std::uint32_t word = w.words[static_cast<std::size_t>(r * w.words_per_row + c / 4)];
        const std::uint32_t field = (word >> (8 * (c % 4))) & 0xFF;
        if (!(field & 0x80)) continue;
        const std::int64_t term = x[n * w.cols + c] >> (field & 0x3F);
        total += field & 0x40 ? -term : term;
      }
      y[n * w.rows + r] = total;
    }
}

void naive_float_linear(const std::vector<float>& w, const std::vector<float>& x,
                        std::int64_t batch, std::int64_t rows, std::int64_t cols,
                        std::vector<float>& y) {
#pragma omp parallel for collapse(2)
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t r = 0; r < rows; ++r) {
      float total = 0;
      for (std::int64_t c = 0; c < cols; ++c) total += w[r * cols + c] * x[n * cols + c];
      y[static_cast<std::size_t>(n * rows + r)] = total;
    }
}

void naive_float_conv(const std::vector<float>& w, const std::vector<float>& x, std::int64_t batch,
                      std::int64_t channels, std::int64_t size, std::vector<float>& y) {
#pragma omp parallel for collapse(2)
  for (std::int64_t n = 0; n < batch; ++n)
    for (std::int64_t o = 0; o < channels; ++o)
      for (std::int64_t i = 0; i < size; ++i)
        for (std::int64_t j = 0; j < size; ++j) {
          float total = 0;
          for (std::int64_t c = 0; c < channels; ++c)
            for (std::int64_t r = 0; r < 3; ++r)
              for (std::int64_t s = 0; s < 3; ++s) {
                const std::int64_t iy = i + r - 1, ix = j + s - 1;
                if (iy < 0 || iy >= size || ix < 0 || ix >= size) continue;
                total += w[((o * channels + c) * 3 + r) * 3 + s] *
                         x[((n * channels + c) * size + iy) * size + ix];
              }
          y[static_cast<std::size_t>(((n * channels + o) * size + i) * size + j)] = total;
        }
}

// The 64x784 by 512x784 case in two formats: 5 weight bits with 16-bit activations, and
// the deployment format (4-bit codes, 8-bit activations).
void bench_scalar_linear(int weight_bits, const ActivationFormat& format) {
  const std::int64_t batch = 64, rows = 512, cols = 784;
  const PackedWeights w = random_packed(rows, cols, weight_bits);
  const OriginalStyleWeights original = original_style(w);
  std::mt19937_64 rng(6);
  const auto x = test::random_activations(rng, format, batch * cols);
  std::vector<std::int64_t> y(static_cast<std::size_t>(batch * rows));
  std::vector<float> wf = unpack_weights(w).to_vector<float>(), xf(x.begin(), x.end()),
                     yf(static_cast<std::size_t>(batch * rows));
  const PreparedWeights prepared(std::make_shared<const PackedWeights>(w), format);
  const auto t = bench::interleaved_medians(
      {[&] { linear_int(prepared, x.data(), batch, y.data()); },
       [&] { original_style_linear(original, x.data(), batch, y.data()); },
       [&] { naive_float_linear(wf, xf, batch, rows, cols, yf); }},
      {9, 3});
  const std::string what = "(d) linear 64x784 by 512x784 w" + std::to_string(weight_bits) + " a" +
                           std::to_string(format.bits);
  print_pair(what, "shift kernel", t[0], "per-term scalar shift", t[1]);
  print_pair(what, "shift kernel", t[0], "naive float loops", t[2]);
}

void bench_scalar() {
  bench_scalar_linear(5, {16, true});
  bench_scalar_linear(4, {8, true});
  const ActivationFormat format{16, true};

  // One resnet20 stage-1 convolution (16 -> 16 channels, 3x3, 32x32) at batch 16.
  const std::int64_t conv_batch = 16, channels = 16, size = 32;
  std::mt19937_64 conv_rng(7);
  const test::LayerFormat conv_format{5, ShiftType::PS, format};
  const PackedWeights cw =
      pack_weights(test::random_shift_weights(conv_rng, conv_format, {channels, channels, 3, 3}),
                   Tensor(), 0, false);
  const auto cx = test::random_activations(conv_rng, format, conv_batch * channels * size * size);
  ConvGeometry g{conv_batch, channels, size, size, 3, 3, {}};
  g.params.pad_h = g.params.pad_w = 1;
  std::vector<std::int64_t> cy(static_cast<std::size_t>(conv_batch * channels * size * size));
  const std::vector<float> cwf = unpack_weights(cw).to_vector<float>(), cxf(cx.begin(), cx.end());
  std::vector<float> cyf(cy.size());
  const auto tc = bench::interleaved_medians(
      {[&] { conv2d_int(cw, cx.data(), g, format, cy.data(), kernel_path()); },
       [&] { naive_float_conv(cwf, cxf, conv_batch, channels, size, cyf); }},
      {9, 3});
  print_pair("(d) conv 16x16x3x3 on 16x16x32x32 w5 a16", "shift kernel", tc[0], "naive float loops",
             tc[1]);
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each figure as soon as it is measured
  const std::set<std::string> known{"gemv", "gemm", "resnet", "layers", "image", "train", "scalar"};
  std::set<std::string> wanted(argv + 1, argv + argc);
  for (const std::string& name : wanted)
    if (!known.count(name)) {
      std::fprintf(stderr,
                   "bench_kernels: unknown benchmark '%s' (usage: bench_kernels [gemv] [gemm] "
                   "[resnet] [layers] [image] [train] [scalar])\n",
                   name.c_str());
      return 2;
    }
  auto run = [&](const char* name) { return wanted.empty() || wanted.count(name); };
  std::printf("shift kernel path: %s, %d OpenMP threads, %s, load average %s\n",
              kernel_path_name(kernel_path()), omp_get_max_threads(), bench::cpu_model().c_str(),
              bench::load_average().c_str());
  if (run("gemv")) {
    for (const std::int64_t n : {4096, 1024}) {
      bench_gemv(n, 4, {8, true});
      bench_gemv(n, 5, {16, true});
      // The original's default format: 5-bit weights, 16.16 activations (int64 lanes).
      bench_gemv(n, 5, {32, true});
    }
  }
  if (run("gemm")) {
    bench_gemm(4, {8, true});
    bench_gemm(5, {16, true});
  }
  if (run("resnet")) bench_resnet();
  if (run("layers")) bench_resnet_layers();
  if (run("image")) bench_large_image();
  if (run("train")) bench_train();
  if (run("scalar")) bench_scalar();
  return 0;
}
