#include "tensor/random.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>

namespace ds {

void Generator::manual_seed(std::uint64_t seed) { engine_.seed(seed); }

double Generator::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

std::int64_t Generator::below(std::int64_t n) {
  if (n <= 0) fail("Generator::below: bound must be positive, got ", n);
  // Rejection sampling removes the modulo bias.
  const auto bound = static_cast<std::uint64_t>(n);
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t draw;
  do draw = engine_();
  while (draw >= limit);
  return static_cast<std::int64_t>(draw % bound);
}

std::string Generator::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail()) fail("Generator::set_state: not a generator state (", state.size(), " bytes)");
  engine_ = restored;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace {

// Draws on the host in logical order so that a seed gives the same tensor on every device.
template <typename Draw>
Tensor generate(const Shape& shape, DType dtype, Draw draw) {
  if (!is_floating(dtype)) fail("random tensors need a floating dtype, got ", dtype_name(dtype));
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_floating(dtype, "random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* data = out.data<T>();
    for (std::int64_t i = 0; i < out.numel(); ++i) data[i] = static_cast<T>(draw());
  });
  return out;
}

}  // namespace

Tensor rand(const Shape& shape, DType dtype, Generator& gen) {
  return uniform(shape, 0.0, 1.0, dtype, gen);
}

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator& gen) {
  if (!(low <= high)) fail("uniform: low ", low, " is above high ", high);
  Tensor out = generate(shape, dtype, [&] { return low + (high - low) * gen.uniform(); });
  if (low < high) {
    // Rounding to f32 can carry a draw just below `high` onto it; keep the range half-open.
    dispatch_floating(dtype, "uniform", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T top = std::nextafter(static_cast<T>(high), static_cast<T>(low));
      T* data = out.data<T>();
      for (std::int64_t i = 0; i < out.numel(); ++i) data[i] = std::min(data[i], top);
    });
  }
  return out;
}

Tensor randn(const Shape& shape, DType dtype, Generator& gen) {
  return normal(shape, 0.0, 1.0, dtype, gen);
}

Tensor normal(const Shape& shape, double mean, double stddev, DType dtype, Generator& gen) {
  if (stddev < 0) fail("normal: stddev must be non-negative, got ", stddev);
  return generate(shape, dtype, [&] { return mean + stddev * gen.normal(); });
}

Tensor bernoulli(const Tensor& p, Generator& gen) {
  const Tensor probs = p.detach().to(DType::f64).to(Device::cpu()).contiguous();
  const double* prob = probs.data<double>();
  std::int64_t i = 0;
  for (std::int64_t j = 0; j < probs.numel(); ++j)
    if (!(prob[j] >= 0.0 && prob[j] <= 1.0))
      fail("bernoulli: probability ", prob[j], " at element ", j, " is outside [0, 1]");
  const Tensor draws =
      generate(p.shape(), DType::f64, [&] { return gen.uniform() < prob[i++] ? 1.0 : 0.0; });
  return draws.to(p.dtype()).to(p.device());
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& gen) {
  return bernoulli(Tensor::full(shape, p, DType::f64), gen).to(dtype);
}

Tensor randperm(std::int64_t n, Generator& gen) {
  if (n < 0) fail("randperm: n must be non-negative, got ", n);
  Tensor out = Tensor::arange(0, static_cast<double>(n), 1, DType::i32);
  std::int32_t* data = out.data<std::int32_t>();
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(data[i], data[gen.below(i + 1)]);
  return out;
}

}  // namespace ds
