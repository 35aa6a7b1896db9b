// The seeded generator: reproducibility, ranges and the statistics of each distribution.
#include <omp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"

using namespace ds;

namespace {

struct Moments {
  double mean = 0;
  double stddev = 0;
};

Moments moments(const std::vector<double>& values) {
  const double n = static_cast<double>(values.size());
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (n - 1))};
}

}  // namespace

TEST_CASE("the same seed gives the same numbers", "[tensor][random]") {
  Generator a(42);
  Generator b(42);
  CHECK(rand({64}, DType::f32, a).to_vector<float>() ==
        rand({64}, DType::f32, b).to_vector<float>());
  CHECK(randn({16}, DType::f64, a).to_vector<double>() ==
        randn({16}, DType::f64, b).to_vector<double>());
  CHECK(randperm(20, a).to_vector<std::int32_t>() == randperm(20, b).to_vector<std::int32_t>());

  Generator c(43);
  CHECK(rand({64}, DType::f32, a).to_vector<float>() !=
        rand({64}, DType::f32, c).to_vector<float>());
}

TEST_CASE("manual_seed resets the default generator", "[tensor][random]") {
  manual_seed(7);
  const std::vector<float> first = rand({32}).to_vector<float>();
  const std::vector<float> second = rand({32}).to_vector<float>();
  CHECK(first != second);
  manual_seed(7);
  CHECK(rand({32}).to_vector<float>() == first);
}

TEST_CASE("state and set_state resume the same sequence", "[tensor][random]") {
  Generator gen(123);
  rand({5}, DType::f32, gen);
  const std::string saved = gen.state();
  const std::vector<double> expected = normal({50}, 0, 1, DType::f64, gen).to_vector<double>();
  const std::uint64_t next = gen.next_u64();

  gen.set_state(saved);
  CHECK(normal({50}, 0, 1, DType::f64, gen).to_vector<double>() == expected);
  CHECK(gen.next_u64() == next);

  Generator other(999);
  other.set_state(saved);
  CHECK(normal({50}, 0, 1, DType::f64, other).to_vector<double>() == expected);
  CHECK_THROWS_AS(other.set_state("not a generator state"), Error);
}

TEST_CASE("a generator's sequence is mt19937_64's from its seed, however the seed was set",
          "[tensor][random]") {
  const std::uint64_t first = std::mt19937_64(77)();
  Generator fresh(77);
  CHECK(fresh.next_u64() == first);
  Generator reseeded(1);
  reseeded.next_u64();
  reseeded.manual_seed(77);
  CHECK(reseeded.next_u64() == first);
  // The engine is seeded at the first draw: a state taken before any draw is still the seed's.
  const Generator undrawn(77);
  Generator restored(5);
  restored.set_state(undrawn.state());
  CHECK(restored.next_u64() == first);
}

TEST_CASE("uniform stays in [low, high) and covers it", "[tensor][random]") {
  Generator gen(1);
  const std::vector<double> u = uniform({20000}, -2, 3, DType::f64, gen).to_vector<double>();
  const auto [lowest, highest] = std::minmax_element(u.begin(), u.end());
  CHECK(*lowest >= -2);
  CHECK(*highest < 3);
  CHECK(*lowest < -1.99);
  CHECK(*highest > 2.99);
  CHECK(moments(u).mean == Approx(0.5).margin(0.05));

  const std::vector<double> unit = rand({1000}, DType::f64, gen).to_vector<double>();
  CHECK(*std::min_element(unit.begin(), unit.end()) >= 0);
  CHECK(*std::max_element(unit.begin(), unit.end()) < 1);
  for (int i = 0; i < 1000; ++i) {
    const double x = gen.uniform();
    REQUIRE(x >= 0);
    REQUIRE(x < 1);
    REQUIRE(gen.below(7) < 7);
  }
}

TEST_CASE("normal has the requested mean and standard deviation", "[tensor][random]") {
  Generator gen(2);
  // 100k samples: the standard error of the mean is 2 / sqrt(1e5) = 0.0063.
  const Moments m =
      moments(normal({100000}, 1.5, 2, DType::f32, gen).to(DType::f64).to_vector<double>());
  CHECK(m.mean == Approx(1.5).margin(0.03));
  CHECK(m.stddev == Approx(2).margin(0.03));

  const Moments standard = moments(randn({100000}, DType::f64, gen).to_vector<double>());
  CHECK(standard.mean == Approx(0).margin(0.015));
  CHECK(standard.stddev == Approx(1).margin(0.015));
}

TEST_CASE("bernoulli draws ones at the requested rate", "[tensor][random]") {
  Generator gen(3);
  const Tensor draws = bernoulli({100000}, 0.3, DType::f32, gen);
  const std::vector<float> values = draws.to_vector<float>();
  CHECK(std::all_of(values.begin(), values.end(), [](float v) { return v == 0 || v == 1; }));
  // The standard error of the rate is sqrt(0.21 / 1e5) = 0.0015.
  CHECK(ds::mean(draws).item() == Approx(0.3).margin(0.008));

  const Tensor p = Tensor::from_vector<double>({0, 1, 0, 1}, {2, 2});
  const Tensor certain = bernoulli(p, gen);
  CHECK(certain.dtype() == DType::f64);
  CHECK(certain.shape() == Shape{2, 2});
  CHECK(certain.to_vector<double>() == std::vector<double>{0, 1, 0, 1});
}

TEST_CASE("a bernoulli mask is one draw of the generator, the same on any thread count",
          "[tensor][random]") {
  const int threads = omp_get_max_threads();
  Generator gen(8), replay(8);
  omp_set_num_threads(1);
  const std::vector<float> serial = bernoulli({70000}, 0.8, DType::f32, gen).to_vector<float>();
  omp_set_num_threads(std::max(threads, 2));
  CHECK(bernoulli({70000}, 0.8, DType::f64, replay).to_vector<double>() ==
        std::vector<double>(serial.begin(), serial.end()));
  omp_set_num_threads(threads);
  // Each mask took one 64-bit draw: the generators are in step, and the next mask differs.
  CHECK(gen.next_u64() == replay.next_u64());
  CHECK(bernoulli({70000}, 0.8, DType::f32, gen).to_vector<float>() != serial);

  // Neighbours are independent: pairs of ones at rate p^2, ones after a zero at rate p.
  std::int64_t ones = 0, pairs = 0, zeros = 0, one_after_zero = 0;
  for (std::size_t i = 0; i + 1 < serial.size(); ++i) {
    ones += serial[i] == 1;
    pairs += serial[i] == 1 && serial[i + 1] == 1;
    zeros += serial[i] == 0;
    one_after_zero += serial[i] == 0 && serial[i + 1] == 1;
  }
  const double n = static_cast<double>(serial.size() - 1);
  CHECK(static_cast<double>(ones) / n == Approx(0.8).margin(0.01));
  CHECK(static_cast<double>(pairs) / n == Approx(0.64).margin(0.01));
  CHECK(static_cast<double>(one_after_zero) / static_cast<double>(zeros) ==
        Approx(0.8).margin(0.02));

  // The ends of the range are exact.
  CHECK(ds::sum(bernoulli({1000}, 1.0, DType::f32, gen)).item() == 1000);
  CHECK(ds::sum(bernoulli({1000}, 0.0, DType::f32, gen)).item() == 0);
}

TEST_CASE("randperm is a permutation", "[tensor][random]") {
  Generator gen(4);
  const Tensor perm = randperm(1000, gen);
  CHECK(perm.dtype() == DType::i32);
  std::vector<std::int32_t> values = perm.to_vector<std::int32_t>();
  std::vector<std::int32_t> identity(1000);
  std::iota(identity.begin(), identity.end(), 0);
  CHECK(values != identity);  // a shuffle that left all 1000 in place would be broken
  std::sort(values.begin(), values.end());
  CHECK(values == identity);
  CHECK(randperm(0, gen).numel() == 0);
}
