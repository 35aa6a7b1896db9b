#include "nn/init.hpp"

#include <cmath>

#include "tensor/random.hpp"

namespace ds::nn::init {

std::pair<std::int64_t, std::int64_t> fans(const Shape& shape) {
  if (shape.size() < 2) fail("init: fan in/out need at least 2 dims, got shape ", shape);
  std::int64_t receptive = 1;
  for (std::size_t i = 2; i < shape.size(); ++i) receptive *= shape[i];
  return {shape[1] * receptive, shape[0] * receptive};
}

namespace {
double fan_of(const Tensor& t, FanMode mode) {
  const auto [in, out] = fans(t.shape());
  return static_cast<double>(mode == FanMode::fan_in ? in : out);
}
}  // namespace

void uniform_(const Tensor& t, double low, double high, Generator& gen) {
  fill_uniform(t, low, high, gen);
}

void normal_(const Tensor& t, double mean, double stddev, Generator& gen) {
  fill_normal(t, mean, stddev, gen);
}

void kaiming_uniform_(const Tensor& t, double a, FanMode mode, Generator& gen) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / fan_of(t, mode));
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(const Tensor& t, double a, FanMode mode, Generator& gen) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  normal_(t, 0.0, gain / std::sqrt(fan_of(t, mode)), gen);
}

void xavier_uniform_(const Tensor& t, double gain, Generator& gen) {
  const auto [in, out] = fans(t.shape());
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(in + out));
  uniform_(t, -bound, bound, gen);
}

void default_layer_init_(const Tensor& weight, const Tensor& bias, Generator& gen) {
  kaiming_uniform_(weight, std::sqrt(5.0), FanMode::fan_in, gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fans(weight.shape()).first));
    uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace ds::nn::init
