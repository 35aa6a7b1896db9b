#include "tensor/random.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numbers>
#include <sstream>

#include "autograd/grad_mode.hpp"
#include "tensor/cpu/strided_loop.hpp"

namespace ds {

void Generator::manual_seed(std::uint64_t seed) {
  seed_ = seed;
  engine_.reset();
  has_spare_ = false;
}

double Generator::uniform() { return static_cast<double>(engine()() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_normal_;
  }
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_normal_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

std::int64_t Generator::below(std::int64_t n) {
  if (n <= 0) fail("Generator::below: bound must be positive, got ", n);
  // Rejection sampling removes the modulo bias.
  const auto bound = static_cast<std::uint64_t>(n);
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  std::uint64_t draw;
  do draw = engine()();
  while (draw >= limit);
  return static_cast<std::int64_t>(draw % bound);
}

// The engine's own text, then the spare normal's flag and bits (exact, unlike decimal text).
// A state without the last two fields (written before the spare existed) has no spare.
std::string Generator::state() const {
  std::ostringstream out;
  out << (engine_ ? *engine_ : std::mt19937_64(seed_)) << ' ' << (has_spare_ ? 1 : 0) << ' '
      << std::bit_cast<std::uint64_t>(spare_normal_);
  return out.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream in(state);
  std::mt19937_64 restored;
  in >> restored;
  if (in.fail()) fail("Generator::set_state: not a generator state (", state.size(), " bytes)");
  int has_spare = 0;
  std::uint64_t spare_bits = 0;
  if (!(in >> has_spare)) {
    has_spare = 0;
  } else if (!(in >> spare_bits) || (has_spare != 0 && has_spare != 1)) {
    fail("Generator::set_state: not a generator state (", state.size(), " bytes)");
  }
  engine_ = restored;
  has_spare_ = has_spare == 1;
  spare_normal_ = std::bit_cast<double>(spare_bits);
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

namespace {

void require_floating(DType dtype) {
  if (!is_floating(dtype)) fail("random tensors need a floating dtype, got ", dtype_name(dtype));
}

// Draws on the host in logical order so that a seed gives the same tensor on every device;
// a contiguous CPU destination is written directly, others through a host buffer.
template <typename Draw>
void fill_random(const Tensor& out, Draw draw) {
  require_floating(out.dtype());
  const bool direct = out.device().is_cpu() && out.is_contiguous();
  const Tensor target = direct ? out : Tensor::empty(out.shape(), out.dtype());
  dispatch_floating(out.dtype(), "random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* data = target.data<T>();
    const std::int64_t n = target.numel();
    for (std::int64_t i = 0; i < n; ++i) data[i] = draw(tag);
  });
  if (direct) {
    out.storage().bump_version();
  } else {
    NoGradGuard no_grad;
    out.copy_(target);
  }
}

template <typename Draw>
Tensor generate(const Shape& shape, DType dtype, Draw draw) {
  require_floating(dtype);
  Tensor out = Tensor::empty(shape, dtype);
  fill_random(out, draw);
  return out;
}

// Draws of low + (high - low) u as T. Rounding to f32 can carry a draw just below `high` onto
// it; clamping to the largest T below `high` keeps the range half-open.
auto uniform_draw(double low, double high, Generator& gen) {
  return [low, high, &gen](auto tag) {
    using T = typename decltype(tag)::type;
    const T value = static_cast<T>(low + (high - low) * gen.uniform());
    if (!(low < high)) return value;
    const T top = std::nextafter(static_cast<T>(high), static_cast<T>(low));
    return std::min(value, top);
  };
}

auto normal_draw(double mean, double stddev, Generator& gen) {
  return [mean, stddev, &gen](auto tag) {
    using T = typename decltype(tag)::type;
    return static_cast<T>(mean + stddev * gen.normal());
  };
}

}  // namespace

Tensor rand(const Shape& shape, DType dtype, Generator& gen) {
  return uniform(shape, 0.0, 1.0, dtype, gen);
}

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator& gen) {
  if (!(low <= high)) fail("uniform: low ", low, " is above high ", high);
  return generate(shape, dtype, uniform_draw(low, high, gen));
}

void fill_uniform(const Tensor& t, double low, double high, Generator& gen) {
  if (!(low <= high)) fail("fill_uniform: low ", low, " is above high ", high);
  fill_random(t, uniform_draw(low, high, gen));
}

Tensor randn(const Shape& shape, DType dtype, Generator& gen) {
  return normal(shape, 0.0, 1.0, dtype, gen);
}

Tensor normal(const Shape& shape, double mean, double stddev, DType dtype, Generator& gen) {
  if (stddev < 0) fail("normal: stddev must be non-negative, got ", stddev);
  return generate(shape, dtype, normal_draw(mean, stddev, gen));
}

void fill_normal(const Tensor& t, double mean, double stddev, Generator& gen) {
  if (stddev < 0) fail("fill_normal: stddev must be non-negative, got ", stddev);
  fill_random(t, normal_draw(mean, stddev, gen));
}

Tensor bernoulli(const Tensor& p, Generator& gen) {
  const Tensor probs = p.detach().to(DType::f64).to(Device::cpu()).contiguous();
  const double* prob = probs.data<double>();
  std::int64_t i = 0;
  for (std::int64_t j = 0; j < probs.numel(); ++j)
    if (!(prob[j] >= 0.0 && prob[j] <= 1.0))
      fail("bernoulli: probability ", prob[j], " at element ", j, " is outside [0, 1]");
  const Tensor draws =
      generate(p.shape(), DType::f64, [&](auto) { return gen.uniform() < prob[i++] ? 1.0 : 0.0; });
  return draws.to(p.dtype()).to(p.device());
}

namespace {

// SplitMix64's output for the state `state` (Steele, Lea and Flood, 2014).
std::uint64_t splitmix64(std::uint64_t state) {
  state = (state ^ (state >> 30)) * 0xbf58476d1ce4e5b9ULL;
  state = (state ^ (state >> 27)) * 0x94d049bb133111ebULL;
  return state ^ (state >> 31);
}

}  // namespace

// Counter-based: one draw of the generator is the key, and element i takes the 53 high bits of
// SplitMix64's (i + 1)-th output from that key, a function of (key, i) alone. A dropout mask
// then costs one draw instead of one per element (mt19937_64 took about 10 ns each here, half
// of the MNIST FC model's forward pass), and its elements are computed in parallel, the same
// for every thread count.
Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator& gen) {
  if (!(p >= 0.0 && p <= 1.0)) fail("bernoulli: probability ", p, " is outside [0, 1]");
  require_floating(dtype);
  constexpr std::uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ULL;  // SplitMix64's increment
  const std::uint64_t key = gen.next_u64();
  // u = bits * 2^-53 < p exactly when the integer bits < p * 2^53, i.e. below its ceiling.
  const auto threshold = static_cast<std::uint64_t>(std::ceil(p * 0x1.0p53));
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_floating(dtype, "bernoulli", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* data = out.data<T>();
    const std::int64_t n = out.numel();
#pragma omp parallel for simd schedule(static) if (n >= cpu::kParallelGrain)
    for (std::int64_t i = 0; i < n; ++i) {
      const std::uint64_t bits = splitmix64(key + static_cast<std::uint64_t>(i + 1) * kGoldenGamma);
      data[i] = (bits >> 11) < threshold ? T(1) : T(0);
    }
  });
  return out;
}

Tensor randperm(std::int64_t n, Generator& gen) {
  if (n < 0) fail("randperm: n must be non-negative, got ", n);
  Tensor out = Tensor::arange(0, static_cast<double>(n), 1, DType::i32);
  std::int32_t* data = out.data<std::int32_t>();
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(data[i], data[gen.below(i + 1)]);
  return out;
}

}  // namespace ds
