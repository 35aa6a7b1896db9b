#pragma once
// The framework's seeded generator. Its sequence is defined here (mt19937_64 plus our own
// conversions), not by the standard library's distributions, so that a seed gives the same
// numbers on every compiler and platform.
#include <cstdint>
#include <optional>
#include <random>
#include <string>

#include "tensor/tensor.hpp"

namespace ds {

// The engine is seeded at the first draw, not at construction: seeding mt19937_64 fills 312
// words, and a data loader makes a generator per sample that deterministic transforms never
// draw from.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0x5eedULL) : seed_(seed) {}
  void manual_seed(std::uint64_t seed);
  std::uint64_t next_u64() { return engine()(); }
  double uniform();                    // [0, 1) with 53 random bits
  double normal();                     // standard normal (Box-Muller, both values of a pair)
  std::int64_t below(std::int64_t n);  // uniform in [0, n), unbiased
  std::string state() const;           // serialised state (spare normal included)
  void set_state(const std::string& state);

 private:
  std::mt19937_64& engine() {
    if (!engine_) engine_.emplace(seed_);
    return *engine_;
  }

  std::uint64_t seed_;
  std::optional<std::mt19937_64> engine_;
  // Box-Muller turns two uniforms into two normals; the second waits here for the next call.
  double spare_normal_ = 0.0;
  bool has_spare_ = false;
};

Generator& default_generator();
void manual_seed(std::uint64_t seed);

Tensor rand(const Shape& shape, DType dtype = DType::f32, Generator& gen = default_generator());
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32,
               Generator& gen = default_generator());
Tensor randn(const Shape& shape, DType dtype = DType::f32, Generator& gen = default_generator());
Tensor normal(const Shape& shape, double mean, double stddev, DType dtype = DType::f32,
              Generator& gen = default_generator());
// Fill an existing tensor in place, drawing in logical order (as the factories above do) and
// writing straight into contiguous CPU memory.
void fill_uniform(const Tensor& t, double low, double high, Generator& gen = default_generator());
void fill_normal(const Tensor& t, double mean, double stddev, Generator& gen = default_generator());
// Each element is 1 with probability p (elementwise tensor or a scalar), else 0; p's dtype.
// The elementwise form draws one uniform per element in logical order; the scalar form (dropout
// masks) draws a single key and derives every element from it (counter-based, see random.cpp).
Tensor bernoulli(const Tensor& p, Generator& gen = default_generator());
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32,
                 Generator& gen = default_generator());
// A random permutation of 0..n-1 (i32), Fisher-Yates.
Tensor randperm(std::int64_t n, Generator& gen = default_generator());

}  // namespace ds
