// Fits a small MLP to y = sin(3x) on [-1, 1] with the framework's autograd and plain SGD, and
// prints the mean squared error as it falls. It exercises the whole training loop (forward,
// backward, in-place parameter update) without any nn/ or optim/ helper.
//
//   fit_mlp [--steps N] [--lr X] [--seed S] [--hidden H]
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "deepshift.hpp"

namespace {

struct Options {
  int steps = 2000;
  double lr = 0.1;
  std::uint64_t seed = 1;
  int hidden = 64;
};

constexpr int kPoints = 256;
constexpr int kReports = 10;

const char* const kUsage =
    "usage: fit_mlp [--steps N] [--lr X] [--seed S] [--hidden H]\n"
    "  --steps N   SGD steps (default 2000)\n"
    "  --lr X      learning rate (default 0.1)\n"
    "  --seed S    seed of the weight initialisation (default 1)\n"
    "  --hidden H  width of the two hidden layers (default 64)\n";

struct UsageError {
  std::string message;
};

// Parses the whole of `text` as a T, refusing trailing garbage and out-of-range values.
template <typename T>
T parse_value(std::string_view option, std::string_view text) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw UsageError{ds::concat(option, " expects a number, got '", text, "'")};
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view option = argv[i];
    if (option == "--help" || option == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    const bool known =
        option == "--steps" || option == "--lr" || option == "--seed" || option == "--hidden";
    if (!known) throw UsageError{ds::concat("unknown option '", option, "'")};
    if (i + 1 >= argc) throw UsageError{ds::concat(option, " needs a value")};
    const std::string_view value = argv[++i];
    if (option == "--steps") {
      options.steps = parse_value<int>(option, value);
    } else if (option == "--lr") {
      options.lr = parse_value<double>(option, value);
    } else if (option == "--seed") {
      options.seed = parse_value<std::uint64_t>(option, value);
    } else {
      options.hidden = parse_value<int>(option, value);
    }
  }
  if (options.steps < 1 || options.hidden < 1 || !(options.lr > 0.0)) {
    throw UsageError{"--steps, --hidden and --lr must be positive"};
  }
  return options;
}

// A fully connected layer initialised as PyTorch's nn.Linear: U(-1/sqrt(in), 1/sqrt(in)).
struct Dense {
  ds::Tensor weight;  // [in, out], so that the forward pass is x @ weight
  ds::Tensor bias;    // [out]

  Dense(std::int64_t in, std::int64_t out, ds::Generator& gen) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    weight = ds::uniform({in, out}, -bound, bound, ds::DType::f32, gen).requires_grad_();
    bias = ds::uniform({out}, -bound, bound, ds::DType::f32, gen).requires_grad_();
  }

  ds::Tensor operator()(const ds::Tensor& x) const { return ds::matmul(x, weight) + bias; }
};

// The toy problem: kPoints evenly spaced x in [-1, 1] and their targets sin(3x), as columns.
void make_data(ds::Tensor& x, ds::Tensor& y) {
  std::vector<float> xs(kPoints), ys(kPoints);
  for (int i = 0; i < kPoints; ++i) {
    xs[i] = -1.0f + 2.0f * static_cast<float>(i) / (kPoints - 1);
    ys[i] = std::sin(3.0f * xs[i]);
  }
  x = ds::Tensor::from_vector(xs, {kPoints, 1});
  y = ds::Tensor::from_vector(ys, {kPoints, 1});
}

int run(const Options& options) {
  ds::Generator gen(options.seed);
  const Dense layers[] = {Dense(1, options.hidden, gen), Dense(options.hidden, options.hidden, gen),
                          Dense(options.hidden, 1, gen)};
  ds::Tensor x, y;
  make_data(x, y);

  const int report_every = std::max(1, options.steps / kReports);
  double first_loss = 0.0, last_loss = 0.0;
  for (int step = 1; step <= options.steps; ++step) {
    const ds::Tensor hidden = ds::relu(layers[1](ds::relu(layers[0](x))));
    const ds::Tensor error = layers[2](hidden) - y;
    const ds::Tensor loss = ds::mean(error * error);
    loss.backward();

    last_loss = loss.item();
    if (step == 1) first_loss = last_loss;
    if (!std::isfinite(last_loss)) {
      std::fprintf(stderr, "fit_mlp: the loss diverged at step %d; try a smaller --lr\n", step);
      return 1;
    }
    if (step == 1 || step % report_every == 0) {
      std::printf("step %5d/%d  mse %.6f\n", step, options.steps, last_loss);
      std::fflush(stdout);
    }

    const ds::NoGradGuard no_grad;
    for (const Dense& layer : layers) {
      for (const ds::Tensor& parameter : {layer.weight, layer.bias}) {
        parameter.add_(parameter.grad(), -options.lr);
        parameter.set_grad(ds::Tensor());
      }
    }
  }
  std::printf("mse fell from %.6f to %.6f in %d steps\n", first_loss, last_loss, options.steps);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const UsageError& error) {
    std::fprintf(stderr, "fit_mlp: %s\n%s", error.message.c_str(), kUsage);
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fit_mlp: error: %s\n", error.what());
    return 1;
  }
}
