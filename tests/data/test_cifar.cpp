// The CIFAR-10/100 binary readers on files the test writes in the standard layouts.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "data/cifar.hpp"
#include "fixtures.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::data;
using ds::testing::MessageContains;

namespace {

std::vector<std::vector<std::uint8_t>> cifar10_labels(std::vector<std::uint8_t> labels) {
  std::vector<std::vector<std::uint8_t>> out;
  for (std::uint8_t label : labels) out.push_back({label});
  return out;
}

// Batch b holds two records labelled b and b + 5 (b = 0 for the test batch).
void write_cifar10(const test::TempDir& dir, const std::string& folder) {
  for (int b = 1; b <= 5; ++b) {
    const auto first = static_cast<std::uint8_t>(b);
    test::write_bytes(dir.file(folder + "/data_batch_" + std::to_string(b) + ".bin"),
                      test::cifar_bytes(cifar10_labels({first, static_cast<std::uint8_t>(b + 4)})));
  }
  test::write_bytes(dir.file(folder + "/test_batch.bin"), test::cifar_bytes({{0}, {9}, {3}}));
}

}  // namespace

TEST_CASE("load_cifar10 reads the five training batches in order", "[data][cifar]") {
  test::TempDir dir;
  write_cifar10(dir, "cifar-10-batches-bin");
  // The archive's own folder and the folder above it both work.
  for (const std::string& root :
       {dir.path().string(), (dir.path() / "cifar-10-batches-bin").string()}) {
    const TensorDataset train = load_cifar10(root, Split::train);
    REQUIRE(train.size() == 10);
    CHECK(train.num_classes() == 10);
    CHECK(train.labels().to_vector<std::int32_t>() ==
          std::vector<std::int32_t>{1, 5, 2, 6, 3, 7, 4, 8, 5, 9});
    // Record 1 of data_batch_3 is sample 5; its pixel p is (1 * 7 + p) % 256 in R, G, B planes.
    const Example sample = train.get(5);
    REQUIRE(sample.image.shape() == Shape{3, 32, 32});
    const std::vector<std::uint8_t> pixels = sample.image.to_vector<std::uint8_t>();
    for (std::int64_t p : {0, 31, 1024, 2047, 3071}) {
      CHECK(pixels[p] == test::cifar_pixel(1, p));
    }
    // Error messages count the training samples over the five files.
    CHECK(train.sample_name(5).ends_with("data_batch_{1..5}.bin, sample 5"));
    const TensorDataset test = load_cifar10(root, Split::test);
    CHECK(test.labels().to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 9, 3});
    CHECK(test.sample_name(2).ends_with("test_batch.bin, sample 2"));
  }
}

TEST_CASE("load_cifar100 reads fine or coarse labels", "[data][cifar]") {
  test::TempDir dir;
  test::write_bytes(dir.file("cifar-100-binary/train.bin"), test::cifar_bytes({{19, 99}, {0, 42}}));
  test::write_bytes(dir.file("cifar-100-binary/test.bin"), test::cifar_bytes({{4, 7}}));
  const TensorDataset fine = load_cifar100(dir.path().string(), Split::train);
  CHECK(fine.num_classes() == 100);
  CHECK(fine.labels().to_vector<std::int32_t>() == std::vector<std::int32_t>{99, 42});
  CHECK(fine.get(1).image.to_vector<std::uint8_t>()[100] == test::cifar_pixel(1, 100));
  const TensorDataset coarse =
      load_cifar100(dir.path().string(), Split::train, Cifar100Label::coarse);
  CHECK(coarse.num_classes() == 20);
  CHECK(coarse.labels().to_vector<std::int32_t>() == std::vector<std::int32_t>{19, 0});
  CHECK(load_cifar100(dir.path().string(), Split::test).get(0).label == 7);
}

TEST_CASE("bad CIFAR files are refused with the file and the fault", "[data][cifar][errors]") {
  const std::string record = test::cifar_bytes({{3}});
  CHECK_THROWS_MATCHES(parse_cifar("", "empty.bin", CifarFormat::cifar10), Error,
                       MessageContains({"empty.bin", "empty file"}));
  CHECK_THROWS_MATCHES(parse_cifar(record + record.substr(0, 100), "cut.bin", CifarFormat::cifar10),
                       Error, MessageContains({"cut.bin", "truncated", "3073-byte records"}));
  CHECK_THROWS_MATCHES(
      parse_cifar(test::cifar_bytes({{3}, {10}}), "label.bin", CifarFormat::cifar10), Error,
      MessageContains({"label.bin", "label 10", "record 1", "out of range"}));
  CHECK_THROWS_MATCHES(
      parse_cifar(test::cifar_bytes({{20, 5}}), "coarse.bin", CifarFormat::cifar100), Error,
      MessageContains({"coarse.bin", "coarse label 20"}));
  CHECK_THROWS_MATCHES(
      parse_cifar(test::cifar_bytes({{2, 100}}), "fine.bin", CifarFormat::cifar100), Error,
      MessageContains({"fine.bin", "fine label 100"}));
  // A CIFAR-10 file read as CIFAR-100 is one byte per record short of whole records.
  CHECK_THROWS_MATCHES(parse_cifar(record, "ten.bin", CifarFormat::cifar100), Error,
                       MessageContains({"ten.bin", "3074-byte records"}));

  test::TempDir dir;
  CHECK_THROWS_MATCHES(load_cifar10(dir.path().string() + "/nowhere", Split::train), Error,
                       MessageContains({"nowhere", "does not exist"}));
  write_cifar10(dir, "cifar-10-batches-bin");
  const std::string batch4 = (dir.path() / "cifar-10-batches-bin" / "data_batch_4.bin").string();
  std::filesystem::remove(batch4);
  CHECK_THROWS_MATCHES(load_cifar10(dir.path().string(), Split::train), Error,
                       MessageContains({batch4, "cannot open"}));
  CHECK_THROWS_MATCHES(load_cifar100(dir.path().string(), Split::test), Error,
                       MessageContains({"test.bin", "cannot open"}));
}
