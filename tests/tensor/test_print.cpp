// operator<< output: readable for small tensors, summarised for large ones.
#include <catch2/catch.hpp>
#include <cstdint>
#include <sstream>
#include <string>

#include "deepshift.hpp"

using namespace ds;
using Catch::Matchers::Contains;

namespace {

std::string printed(const Tensor& t) {
  std::ostringstream out;
  out << t;
  return out.str();
}

}  // namespace

TEST_CASE("a small tensor prints every value", "[tensor][print]") {
  const std::string text = printed(Tensor::from_vector<float>({1, 2.5f, -3, 0.125f}, {2, 2}));
  CHECK_THAT(text, Contains("2.5") && Contains("-3") && Contains("0.125"));
  // Rows of a matrix are distinguishable: the second row starts after the first ends.
  CHECK(text.find("2.5") < text.find("-3"));
}

TEST_CASE("printing mentions the dtype", "[tensor][print]") {
  CHECK_THAT(printed(Tensor::zeros({2}, DType::f64)), Contains("f64"));
  CHECK_THAT(printed(Tensor::zeros({2}, DType::i8)), Contains("i8"));
}

TEST_CASE("byte tensors print as numbers, not characters", "[tensor][print]") {
  const std::string text = printed(Tensor::from_vector<std::uint8_t>({65, 7}, {2}));
  CHECK_THAT(text, Contains("65"));
  CHECK(text.find('A') == std::string::npos);
  CHECK_THAT(printed(Tensor::from_vector<std::int8_t>({-66}, {1})), Contains("-66"));
}

TEST_CASE("a 0-d tensor prints its value", "[tensor][print]") {
  CHECK_THAT(printed(Tensor::scalar(42, DType::i32)), Contains("42"));
}

TEST_CASE("a non-contiguous view prints in logical order", "[tensor][print]") {
  const std::string text = printed(Tensor::from_vector<std::int32_t>({11, 22, 33, 44}, {2, 2}).t());
  CHECK(text.find("33") < text.find("22"));
}

TEST_CASE("a large tensor is summarised", "[tensor][print]") {
  const Tensor big = Tensor::arange(0, 1000000).reshape({1000, 1000});
  const std::string text = printed(big);
  CHECK(text.size() < 4000);
  CHECK_THAT(text, Contains("..."));
  CHECK_THAT(text, Contains("1000"));  // the shape is still visible
}
