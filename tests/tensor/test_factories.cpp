// Factories, dtypes and dtype conversions.
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"

using namespace ds;
using ds::testing::MessageContains;

TEST_CASE("dtype sizes and names", "[tensor][dtype]") {
  CHECK(dtype_size(DType::f32) == 4);
  CHECK(dtype_size(DType::f64) == 8);
  CHECK(dtype_size(DType::i32) == 4);
  CHECK(dtype_size(DType::i8) == 1);
  CHECK(dtype_size(DType::u8) == 1);
  CHECK(std::string(dtype_name(DType::f32)) == "f32");
  CHECK(std::string(dtype_name(DType::u8)) == "u8");
  CHECK(is_floating(DType::f64));
  CHECK_FALSE(is_floating(DType::i32));
}

TEST_CASE("empty has the requested shape, dtype and contiguous strides", "[tensor][factory]") {
  const Tensor t = Tensor::empty({2, 3, 4}, DType::i8);
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  CHECK(t.dtype() == DType::i8);
  CHECK(t.numel() == 24);
  CHECK(t.dim() == 3);
  CHECK(t.is_contiguous());
  CHECK(t.device() == Device::cpu());
  CHECK(t.storage().nbytes() >= 24);
  CHECK_FALSE(t.requires_grad());
}

TEST_CASE("zeros, ones and full fill every dtype", "[tensor][factory]") {
  CHECK(Tensor::zeros({2, 2}).to_vector<float>() == std::vector<float>(4, 0.0f));
  CHECK(Tensor::ones({3}, DType::f64).to_vector<double>() == std::vector<double>(3, 1.0));
  CHECK(Tensor::full({2}, -7, DType::i32).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{-7, -7});
  CHECK(Tensor::full({2}, -3, DType::i8).to_vector<std::int8_t>() ==
        std::vector<std::int8_t>{-3, -3});
  CHECK(Tensor::full({2}, 250, DType::u8).to_vector<std::uint8_t>() ==
        std::vector<std::uint8_t>{250, 250});
  CHECK(Tensor::full({1}, 0.1, DType::f32).item() == static_cast<double>(0.1f));
}

TEST_CASE("a zero-sized dim gives an empty tensor", "[tensor][factory]") {
  const Tensor t = Tensor::zeros({0, 3});
  CHECK(t.numel() == 0);
  CHECK(t.to_vector<float>().empty());
}

TEST_CASE("scalar is a 0-d tensor with one element", "[tensor][factory]") {
  const Tensor s = Tensor::scalar(2.5, DType::f64);
  CHECK(s.dim() == 0);
  CHECK(s.shape().empty());
  CHECK(s.numel() == 1);
  CHECK(s.item() == 2.5);
  CHECK(Tensor::scalar(-4, DType::i32).item() == -4);
}

TEST_CASE("item refuses tensors with more than one element", "[tensor][factory]") {
  CHECK_THROWS_AS(Tensor::zeros({2}).item(), Error);
}

TEST_CASE("arange counts from start below end", "[tensor][factory]") {
  CHECK(Tensor::arange(0, 5).to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(Tensor::arange(1, 2, 0.25).to_vector<float>() == std::vector<float>{1, 1.25, 1.5, 1.75});
  CHECK(Tensor::arange(5, 0, -2, DType::i32).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{5, 3, 1});
  const Tensor r = Tensor::arange(0, 3, 1, DType::f64);
  CHECK(r.dtype() == DType::f64);
  CHECK(r.shape() == Shape{3});
  CHECK(Tensor::arange(2, 2).numel() == 0);
  // The count comes from ceil((end - start) / step), not from accumulating 0.1 ten times.
  CHECK(Tensor::arange(0, 1, 0.1).numel() == 10);
}

TEST_CASE("bad shapes and undefined tensors are reported, not crashed on", "[tensor][factory]") {
  CHECK_THROWS_MATCHES(Tensor::empty({2, -1}), Error, MessageContains({"[2, -1]"}));
  CHECK_THROWS_AS(Tensor().shape(), Error);
  CHECK_FALSE(Tensor().defined());
}

TEST_CASE("from_vector keeps values, infers the dtype and checks the element count",
          "[tensor][factory]") {
  const Tensor t = Tensor::from_vector<std::int32_t>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.dtype() == DType::i32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.data<std::int32_t>()[4] == 5);
  CHECK(Tensor::from_vector<double>({0.5}, {}).item() == 0.5);
  CHECK(Tensor::from_vector<std::uint8_t>({1, 255}, {2}).dtype() == DType::u8);
  CHECK_THROWS_MATCHES(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), Error,
                       MessageContains({"[2, 2]"}));
}

TEST_CASE("data<T> refuses the wrong element type", "[tensor][factory]") {
  const Tensor t = Tensor::zeros({2}, DType::f32);
  CHECK_THROWS_AS(t.data<double>(), Error);
  CHECK_THROWS_AS(t.data<std::int32_t>(), Error);
}

TEST_CASE("describe names dtype and shape", "[tensor][factory]") {
  CHECK_THAT(describe(Tensor::zeros({2, 3})), Catch::Matchers::StartsWith("f32[2, 3]"));
  CHECK_THAT(describe(Tensor::zeros({4}, DType::u8)), Catch::Matchers::StartsWith("u8[4]"));
}

TEST_CASE("to(DType) converts as static_cast", "[tensor][dtype]") {
  SECTION("float to int truncates toward zero") {
    const Tensor f = Tensor::from_vector<float>({2.7f, -2.7f, 0.5f, -100.9f}, {4});
    CHECK(f.to(DType::i32).to_vector<std::int32_t>() == std::vector<std::int32_t>{2, -2, 0, -100});
    CHECK(f.to(DType::i8).to_vector<std::int8_t>() == std::vector<std::int8_t>{2, -2, 0, -100});
  }
  SECTION("narrowing integer conversions wrap instead of saturating") {
    const Tensor i = Tensor::from_vector<std::int32_t>({-1, 256, 257, 200, -129}, {5});
    CHECK(i.to(DType::u8).to_vector<std::uint8_t>() ==
          std::vector<std::uint8_t>{255, 0, 1, 200, 127});
    CHECK(i.to(DType::i8).to_vector<std::int8_t>() == std::vector<std::int8_t>{-1, 0, 1, -56, 127});
  }
  SECTION("widening keeps values, u8 stays unsigned") {
    const Tensor u = Tensor::from_vector<std::uint8_t>({0, 128, 255}, {3});
    CHECK(u.to(DType::i32).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 128, 255});
    CHECK(u.to(DType::f32).to_vector<float>() == std::vector<float>{0, 128, 255});
    const Tensor s = Tensor::from_vector<std::int8_t>({-128, 127}, {2});
    CHECK(s.to(DType::f64).to_vector<double>() == std::vector<double>{-128, 127});
  }
  SECTION("f64 to f32 rounds to nearest float") {
    const Tensor d = Tensor::from_vector<double>({0.1, 1e-3}, {2});
    CHECK(d.to(DType::f32).to_vector<float>() == std::vector<float>{0.1f, 1e-3f});
  }
  SECTION("conversion of a non-contiguous view follows logical order") {
    const Tensor t = Tensor::arange(0, 6).reshape({2, 3}).t();
    CHECK(t.to(DType::i32).to_vector<std::int32_t>() ==
          std::vector<std::int32_t>{0, 3, 1, 4, 2, 5});
  }
  SECTION("the result owns new storage") {
    const Tensor f = Tensor::ones({2});
    const Tensor d = f.to(DType::f64);
    f.fill_(5);
    CHECK(d.to_vector<double>() == std::vector<double>{1, 1});
  }
}
