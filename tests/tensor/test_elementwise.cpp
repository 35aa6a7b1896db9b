// Elementwise ops on small hand-computed examples, for every dtype where they are meaningful.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "deepshift.hpp"

using namespace ds;

namespace {

template <typename T>
Tensor vec(std::vector<T> values) {
  const auto n = static_cast<std::int64_t>(values.size());
  return Tensor::from_vector<T>(values, {n});
}

template <typename T>
void check_close(const Tensor& actual, const std::vector<double>& expected) {
  REQUIRE(actual.dtype() == dtype_of<T>());
  const std::vector<T> values = actual.to_vector<T>();
  REQUIRE(values.size() == expected.size());
  const double tolerance = std::is_same_v<T, float> ? 1e-6 : 1e-14;
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO("element " << i);
    CHECK(values[i] == Approx(expected[i]).epsilon(tolerance).margin(tolerance));
  }
}

using u8s = std::vector<std::uint8_t>;

}  // namespace

TEMPLATE_TEST_CASE("integer arithmetic and comparisons", "[tensor][elementwise]", std::int32_t,
                   std::int8_t, std::uint8_t) {
  using T = TestType;
  const Tensor a = vec<T>({1, 7, 4, 0});
  const Tensor b = vec<T>({3, 2, 4, 9});
  CHECK((a + b).to_vector<T>() == std::vector<T>{4, 9, 8, 9});
  CHECK((maximum(a, b) - a).to_vector<T>() == std::vector<T>{2, 0, 0, 9});
  CHECK((a * b).to_vector<T>() == std::vector<T>{3, 14, 16, 0});
  CHECK(maximum(a, b).to_vector<T>() == std::vector<T>{3, 7, 4, 9});
  CHECK(minimum(a, b).to_vector<T>() == std::vector<T>{1, 2, 4, 0});
  CHECK((a + 2.0).dtype() == dtype_of<T>());
  CHECK((a * 3.0).to_vector<T>() == std::vector<T>{3, 21, 12, 0});

  CHECK(eq(a, b).to_vector<std::uint8_t>() == u8s{0, 0, 1, 0});
  CHECK(ne(a, b).to_vector<std::uint8_t>() == u8s{1, 1, 0, 1});
  CHECK(lt(a, b).to_vector<std::uint8_t>() == u8s{1, 0, 0, 1});
  CHECK(le(a, b).to_vector<std::uint8_t>() == u8s{1, 0, 1, 1});
  CHECK(gt(a, b).to_vector<std::uint8_t>() == u8s{0, 1, 0, 0});
  CHECK(ge(a, b).to_vector<std::uint8_t>() == u8s{0, 1, 1, 0});
  CHECK(eq(a, b).dtype() == DType::u8);
}

TEST_CASE("signed integer comparisons see negative values", "[tensor][elementwise]") {
  const Tensor a = vec<std::int8_t>({-100, 5});
  const Tensor b = vec<std::int8_t>({3, -3});
  CHECK(lt(a, b).to_vector<std::uint8_t>() == u8s{1, 0});
  CHECK(maximum(a, b).to_vector<std::int8_t>() == std::vector<std::int8_t>{3, 5});
  const Tensor c = vec<std::int32_t>({-2000000, 7});
  CHECK((c * 2.0).to_vector<std::int32_t>() == std::vector<std::int32_t>{-4000000, 14});
}

TEMPLATE_TEST_CASE("floating arithmetic", "[tensor][elementwise]", float, double) {
  using T = TestType;
  const Tensor a = vec<T>({1.5, -2, 0.25, 8});
  const Tensor b = vec<T>({0.5, 4, -0.5, 2});
  check_close<T>(a + b, {2, 2, -0.25, 10});
  check_close<T>(a - b, {1, -6, 0.75, 6});
  check_close<T>(a * b, {0.75, -8, -0.125, 16});
  check_close<T>(a / b, {3, -0.5, -0.5, 4});
  check_close<T>(-a, {-1.5, 2, -0.25, -8});
  check_close<T>(neg(b), {-0.5, -4, 0.5, -2});
  check_close<T>(maximum(a, b), {1.5, 4, 0.25, 8});
  check_close<T>(minimum(a, b), {0.5, -2, -0.5, 2});
  check_close<T>(a * 2.0 + 1.0, {4, -3, 1.5, 17});
  check_close<T>(1.0 - a, {-0.5, 3, 0.75, -7});
  check_close<T>(2.0 / b, {4, 0.5, -4, 1});
  check_close<T>(a / 4.0, {0.375, -0.5, 0.0625, 2});
}

TEMPLATE_TEST_CASE("floating powers, exponentials and logarithms", "[tensor][elementwise]", float,
                   double) {
  using T = TestType;
  const Tensor x = vec<T>({1, 2, 0.5, 4});
  check_close<T>(pow(x, 2.0), {1, 4, 0.25, 16});
  check_close<T>(pow(x, vec<T>({3, 0.5, -1, 0.5})), {1, std::sqrt(2.0), 2, 2});
  check_close<T>(pow(3.0, x), {3, 9, std::sqrt(3.0), 81});
  check_close<T>(exp(x), {std::exp(1.0), std::exp(2.0), std::exp(0.5), std::exp(4.0)});
  check_close<T>(log(x), {0, std::log(2.0), std::log(0.5), std::log(4.0)});
  check_close<T>(log2(x), {0, 1, -1, 2});
  check_close<T>(sqrt(x), {1, std::sqrt(2.0), std::sqrt(0.5), 2});
  check_close<T>(x.exp().log(), {1, 2, 0.5, 4});
}

TEMPLATE_TEST_CASE("powers of two are exact", "[tensor][elementwise]", float, double) {
  using T = TestType;
  const Tensor shifts = vec<T>({-14, -3, 0, 5});
  const std::vector<T> expected{static_cast<T>(1.0 / 16384), 0.125, 1, 32};
  CHECK(exp2(shifts).to_vector<T>() == expected);
  CHECK(pow(2.0, shifts).to_vector<T>() == expected);
  const Tensor powers = vec<T>({0.125, 1024});
  CHECK(log2(powers).to_vector<T>() == std::vector<T>{-3, 10});
}

TEMPLATE_TEST_CASE("abs, sign, floor, clamp and relu", "[tensor][elementwise]", float, double) {
  using T = TestType;
  const Tensor x = vec<T>({-2.5, -0.5, 0, 0.75, 3});
  CHECK(abs(x).to_vector<T>() == std::vector<T>{2.5, 0.5, 0, 0.75, 3});
  CHECK(sign(x).to_vector<T>() == std::vector<T>{-1, -1, 0, 1, 1});
  CHECK(floor(x).to_vector<T>() == std::vector<T>{-3, -1, 0, 0, 3});
  CHECK(relu(x).to_vector<T>() == std::vector<T>{0, 0, 0, 0.75, 3});
  CHECK(clamp(x, -1.0, 1.0).to_vector<T>() == std::vector<T>{-1, -0.5, 0, 0.75, 1});
  CHECK(clamp(x, std::nullopt, 0.5).to_vector<T>() == std::vector<T>{-2.5, -0.5, 0, 0.5, 0.5});
  CHECK(clamp(x, 0.0, std::nullopt).to_vector<T>() == std::vector<T>{0, 0, 0, 0.75, 3});
}

TEMPLATE_TEST_CASE("relu's gradient passes where its output is positive", "[tensor][elementwise]",
                   float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  const Tensor x = vec<T>({-2, T(-0.0), 0, 0.5, 3, nan, inf, -inf}).requires_grad_();
  relu(x).backward(vec<T>({1, 2, 3, 4, 5, 6, 7, 8}));
  CHECK(x.grad().to_vector<T>() == std::vector<T>{0, 0, 0, 4, 5, 0, 7, 0});
  // The CPU back-end's single pass against the composed default, on transposed operands.
  Generator gen(2);
  const Tensor output = relu(randn({5, 7}, dtype_of<T>(), gen)).t();
  const Tensor grad = randn({5, 7}, dtype_of<T>(), gen).t();
  Backend& cpu = backend_for(Device::cpu());
  const Tensor fast = Tensor::empty({7, 5}, dtype_of<T>());
  const Tensor composed = Tensor::empty({7, 5}, dtype_of<T>());
  cpu.relu_backward(output, grad, fast);
  cpu.Backend::relu_backward(output, grad, composed);
  CHECK(fast.to_vector<T>() == composed.to_vector<T>());
  CHECK(fast.to_vector<T>() != std::vector<T>(35, T(0)));
}

TEMPLATE_TEST_CASE("round goes half to even", "[tensor][elementwise]", float, double) {
  using T = TestType;
  const Tensor x = vec<T>({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, 2.51, -3.7});
  CHECK(round(x).to_vector<T>() == std::vector<T>{0, 2, 2, 0, -2, -2, 0, 3, -4});
}

TEST_CASE("division by zero gives IEEE infinities, not an error", "[tensor][elementwise]") {
  const Tensor r = vec<float>({1, -1}) / vec<float>({0, 0});
  CHECK(r.to_vector<float>() == std::vector<float>{std::numeric_limits<float>::infinity(),
                                                   -std::numeric_limits<float>::infinity()});
  CHECK(std::isnan(log(vec<float>({-1})).item()));
}

TEST_CASE("floating comparisons and where", "[tensor][elementwise]") {
  const Tensor a = vec<double>({0.1, -3, 2, 7});
  const Tensor b = vec<double>({0.1, 3, 1, 7.5});
  CHECK(eq(a, b).to_vector<std::uint8_t>() == u8s{1, 0, 0, 0});
  CHECK(ge(a, b).to_vector<std::uint8_t>() == u8s{1, 0, 1, 0});
  CHECK(lt(a, b).to_vector<std::uint8_t>() == u8s{0, 1, 0, 1});
  CHECK(where(gt(a, b), a, b).to_vector<double>() == std::vector<double>{0.1, 3, 2, 7.5});
  const Tensor labels = vec<std::int32_t>({4, 5, 6, 7});
  CHECK(where(lt(a, b), labels, Tensor::zeros({4}, DType::i32)).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{0, 5, 0, 7});
}

TEST_CASE("ops on non-contiguous inputs read in logical order", "[tensor][elementwise]") {
  const Tensor m = Tensor::arange(0, 6).reshape({2, 3});
  const Tensor t = m.t();
  CHECK((t + t).to_vector<float>() == std::vector<float>{0, 6, 2, 8, 4, 10});
  CHECK(exp2(m.slice(1, 0, 3, 2)).to_vector<float>() == std::vector<float>{1, 4, 8, 32});
}
