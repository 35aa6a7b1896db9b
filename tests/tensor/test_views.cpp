// Views share storage with their base; copies happen only where the layout demands one.
#include <catch2/catch.hpp>
#include <vector>

#include "deepshift.hpp"
#include "error_matcher.hpp"

using namespace ds;
using ds::testing::MessageContains;

namespace {

// 0, 1, ..., n-1 laid out contiguously in `shape`.
Tensor iota(const Shape& shape) {
  return Tensor::arange(0, static_cast<double>(numel_of(shape))).reshape(shape);
}

bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.storage().same_block(b.storage());
}

}  // namespace

TEST_CASE("view reinterprets a contiguous tensor and writes reach the base", "[tensor][view]") {
  const Tensor base = iota({2, 3});
  const Tensor v = base.view({3, 2});
  CHECK(v.shape() == Shape{3, 2});
  CHECK(shares_storage(v, base));
  v.select(0, 2).fill_(-1);
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 2, 3, -1, -1});
}

TEST_CASE("view of a non-contiguous tensor fails", "[tensor][view]") {
  const Tensor transposed = iota({2, 3}).t();
  CHECK_THROWS_MATCHES(transposed.view({6}), Error, MessageContains({"view"}));
}

TEST_CASE("reshape is a view when possible and a copy otherwise", "[tensor][view]") {
  const Tensor base = iota({2, 3});
  const Tensor same = base.reshape({6});
  CHECK(shares_storage(same, base));

  const Tensor transposed = base.t();
  const Tensor copied = transposed.reshape({6});
  CHECK_FALSE(shares_storage(copied, base));
  CHECK(copied.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  copied.fill_(9);
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("reshape and view check the element count", "[tensor][view]") {
  CHECK_THROWS_AS(iota({2, 3}).reshape({4}), Error);
  CHECK_THROWS_AS(iota({2, 3}).view({5}), Error);
}

TEST_CASE("permute and transpose reorder dims without copying", "[tensor][view]") {
  const Tensor base = iota({2, 3, 4});
  const Tensor p = base.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(shares_storage(p, base));
  CHECK_FALSE(p.is_contiguous());
  // p[k][i][j] == base[i][j][k] == 12 i + 4 j + k
  CHECK(p.select(0, 3).select(0, 1).to_vector<float>() == std::vector<float>{15, 19, 23});

  const Tensor t = base.transpose(-1, 0);
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.select(0, 1).select(0, 2).to_vector<float>() == std::vector<float>{9, 21});

  const Tensor m = iota({2, 3});
  CHECK(m.t().to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5});
  m.t().select(0, 0).fill_(7);  // column 0 of m
  CHECK(m.to_vector<float>() == std::vector<float>{7, 1, 2, 7, 4, 5});
}

TEST_CASE("narrow and select address a sub-block of the base", "[tensor][view]") {
  const Tensor base = iota({3, 4});
  const Tensor n = base.narrow(1, 1, 2);
  CHECK(n.shape() == Shape{3, 2});
  CHECK(n.offset() == 1);
  CHECK(n.to_vector<float>() == std::vector<float>{1, 2, 5, 6, 9, 10});
  n.fill_(0);
  CHECK(base.to_vector<float>() == std::vector<float>{0, 0, 0, 3, 4, 0, 0, 7, 8, 0, 0, 11});

  const Tensor row = base.select(0, 2);
  CHECK(row.shape() == Shape{4});
  CHECK(row.to_vector<float>() == std::vector<float>{8, 0, 0, 11});
  const Tensor column = base.select(1, 3);
  CHECK(column.to_vector<float>() == std::vector<float>{3, 7, 11});
  CHECK(column.stride(0) == 4);

  CHECK_THROWS_AS(base.narrow(1, 3, 2), Error);
  CHECK_THROWS_AS(base.select(0, 3), Error);
}

TEST_CASE("slice with a step strides through the base", "[tensor][view]") {
  const Tensor base = Tensor::arange(0, 10);
  const Tensor even = base.slice(0, 0, 10, 2);
  CHECK(even.shape() == Shape{5});
  CHECK(even.stride(0) == 2);
  CHECK(even.to_vector<float>() == std::vector<float>{0, 2, 4, 6, 8});
  const Tensor odd_tail = base.slice(0, 5, 10, 3);
  CHECK(odd_tail.to_vector<float>() == std::vector<float>{5, 8});

  even.copy_(Tensor::full({5}, -1));
  CHECK(base.to_vector<float>() == std::vector<float>{-1, 1, -1, 3, -1, 5, -1, 7, -1, 9});

  const Tensor m = iota({4, 3});
  const Tensor rows = m.slice(0, 1, 4, 2);
  CHECK(rows.shape() == Shape{2, 3});
  CHECK(rows.to_vector<float>() == std::vector<float>{3, 4, 5, 9, 10, 11});
}

TEST_CASE("expand broadcasts size-1 dims with stride 0", "[tensor][view]") {
  const Tensor base = Tensor::from_vector<float>({1, 2, 3}, {1, 3});
  const Tensor e = base.expand({2, 3});
  CHECK(e.shape() == Shape{2, 3});
  CHECK(e.stride(0) == 0);
  CHECK(e.to_vector<float>() == std::vector<float>{1, 2, 3, 1, 2, 3});
  base.fill_(4);
  CHECK(e.to_vector<float>() == std::vector<float>(6, 4.0f));

  const Tensor leading = Tensor::from_vector<float>({5, 6}, {2}).expand({3, 2});
  CHECK(leading.to_vector<float>() == std::vector<float>{5, 6, 5, 6, 5, 6});
  CHECK_THROWS_AS(base.expand({2, 4}), Error);
}

TEST_CASE("squeeze, unsqueeze and flatten only change the shape", "[tensor][view]") {
  const Tensor base = iota({2, 1, 3, 1});
  CHECK(base.squeeze().shape() == Shape{2, 3});
  CHECK(base.squeeze(1).shape() == Shape{2, 3, 1});
  CHECK(base.squeeze(-1).shape() == Shape{2, 1, 3});
  CHECK(shares_storage(base.squeeze(), base));

  const Tensor v = Tensor::arange(0, 3);
  CHECK(v.unsqueeze(0).shape() == Shape{1, 3});
  CHECK(v.unsqueeze(1).shape() == Shape{3, 1});
  CHECK(v.unsqueeze(1).to_vector<float>() == std::vector<float>{0, 1, 2});

  const Tensor cube = iota({2, 3, 4});
  CHECK(cube.flatten().shape() == Shape{24});
  CHECK(cube.flatten(1).shape() == Shape{2, 12});
  CHECK(cube.flatten(0, 1).shape() == Shape{6, 4});
  const Tensor flat = cube.flatten();
  CHECK(shares_storage(flat, cube));
  flat.narrow(0, 23, 1).fill_(-5);
  CHECK(cube.select(0, 1).select(0, 2).select(0, 3).item() == -5);
}

TEST_CASE("contiguous copies only when the layout is not contiguous", "[tensor][view]") {
  const Tensor base = iota({2, 3});
  CHECK(shares_storage(base.contiguous(), base));

  const Tensor t = base.t();
  const Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(shares_storage(c, base));
  CHECK(c.strides() == Shape{2, 1});
  CHECK(c.to_vector<float>() == t.to_vector<float>());

  const Tensor sliced = base.slice(1, 0, 3, 2).contiguous();
  CHECK(sliced.to_vector<float>() == std::vector<float>{0, 2, 3, 5});
}

TEST_CASE("clone copies into new storage", "[tensor][view]") {
  const Tensor base = iota({2, 2});
  const Tensor c = base.clone();
  CHECK_FALSE(shares_storage(c, base));
  c.fill_(0);
  CHECK(base.to_vector<float>() == std::vector<float>{0, 1, 2, 3});
}

TEST_CASE("negative dims and indices count from the end, as in PyTorch", "[tensor][view]") {
  const Tensor x = iota({2, 3});
  CHECK(x.select(-1, -1).to_vector<float>() == std::vector<float>{2, 5});
  CHECK(x.slice(1, -2, 3).to_vector<float>() == std::vector<float>{1, 2, 4, 5});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 1});
  CHECK(x.transpose(-2, -1).shape() == Shape{3, 2});
  CHECK(x.reshape({-1}).shape() == Shape{6});
  CHECK(x.view({3, -1}).shape() == Shape{3, 2});
}

TEST_CASE("slice clamps an end past the size", "[tensor][view]") {
  CHECK(Tensor::arange(0, 10).slice(0, 7, 100).to_vector<float>() == std::vector<float>{7, 8, 9});
}

TEST_CASE("squeeze(dim) of a dim that is not 1 leaves the shape alone", "[tensor][view]") {
  CHECK(iota({2, 3}).squeeze(0).shape() == Shape{2, 3});
}

TEST_CASE("malformed view arguments are refused", "[tensor][view]") {
  const Tensor x = iota({2, 3});
  CHECK_THROWS_MATCHES(x.permute({0, 0}), Error, MessageContains({"permute"}));
  CHECK_THROWS_AS(x.permute({0}), Error);
  CHECK_THROWS_MATCHES(x.transpose(0, 2), Error, MessageContains({"transpose"}));
  CHECK_THROWS_MATCHES(x.slice(1, 0, 3, 0), Error, MessageContains({"slice"}));
  CHECK_THROWS_AS(x.reshape({-1, -1}), Error);
  CHECK_THROWS_AS(x.view({4, -1}), Error);
  CHECK_THROWS_AS(x.squeeze(2), Error);
}

TEST_CASE("views of views compose offsets and strides", "[tensor][view]") {
  const Tensor base = iota({4, 5});
  const Tensor inner = base.narrow(0, 1, 3).slice(1, 1, 5, 2).t();  // rows 1..3, cols 1 and 3
  CHECK(inner.shape() == Shape{2, 3});
  CHECK(inner.to_vector<float>() == std::vector<float>{6, 11, 16, 8, 13, 18});
  inner.select(0, 1).fill_(0);  // column 3 of rows 1..3
  CHECK(base.select(1, 3).to_vector<float>() == std::vector<float>{3, 0, 0, 0});
}
