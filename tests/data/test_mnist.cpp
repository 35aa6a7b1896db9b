// The IDX reader and load_mnist on files the test writes: raw and gzip'd, and every fault a
// download can have.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>

#include "data/file_bytes.hpp"
#include "data/mnist.hpp"
#include "fixtures.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::data;
using ds::testing::MessageContains;

namespace {

// Three 2x3 images with pixel values 0..17 and labels 7, 0, 9.
void write_small_mnist(const test::TempDir& dir, bool gzip) {
  const std::string suffix = gzip ? ".gz" : "";
  const auto encode = [gzip](const std::string& bytes) {
    return gzip ? test::gzip_bytes(bytes) : bytes;
  };
  test::write_bytes(dir.file("train-images-idx3-ubyte" + suffix),
                    encode(test::idx_bytes({3, 2, 3})));
  test::write_bytes(dir.file("train-labels-idx1-ubyte" + suffix),
                    encode(test::idx_bytes({3}, {7, 0, 9})));
}

}  // namespace

TEST_CASE("load_mnist reads raw and gzip'd IDX files alike", "[data][mnist]") {
  for (bool gzip : {false, true}) {
    test::TempDir dir;
    write_small_mnist(dir, gzip);
    const TensorDataset data = load_mnist(dir.path().string(), Split::train);
    REQUIRE(data.size() == 3);
    CHECK(data.num_classes() == 10);
    CHECK(data.images().shape() == Shape{3, 1, 2, 3});
    const Example second = data.get(1);
    CHECK(second.label == 0);
    CHECK(second.image.shape() == Shape{1, 2, 3});
    CHECK(second.image.to_vector<std::uint8_t>() == std::vector<std::uint8_t>{6, 7, 8, 9, 10, 11});
    CHECK(data.get(2).label == 9);
  }
}

TEST_CASE("a gzip file of several members reads as their contents end to end", "[data][mnist]") {
  const std::string whole = test::idx_bytes({3, 4, 5});
  const std::string half = whole.substr(0, 30);
  const std::string members = test::gzip_bytes(half) + test::gzip_bytes(whole.substr(30));
  CHECK(gunzip(members, "two.gz") == whole);
  std::string many;
  for (std::size_t at = 0; at < whole.size(); at += 7)
    many += test::gzip_bytes(whole.substr(at, 7));
  CHECK(gunzip(many + test::gzip_bytes(""), "many.gz") == whole);
  // The limit counts the output of all members.
  CHECK(gunzip(members, "two.gz", whole.size()) == whole);
  CHECK_THROWS_MATCHES(gunzip(members, "two.gz", whole.size() - 1), Error,
                       MessageContains({"two.gz", "more than"}));
  CHECK(parse_idx(members, "two.gz").to_vector<std::uint8_t>() ==
        parse_idx(whole, "one.idx").to_vector<std::uint8_t>());
}

TEST_CASE("parse_idx keeps every dimension of the header", "[data][mnist]") {
  const Tensor array = parse_idx(test::idx_bytes({2, 1, 2, 2}), "four.idx");
  CHECK(array.shape() == Shape{2, 1, 2, 2});
  CHECK(array.to_vector<std::uint8_t>()[7] == 7);
  CHECK(parse_idx(test::idx_bytes({0, 28, 28}), "empty.idx").shape() == Shape{0, 28, 28});
}

TEST_CASE("corrupt IDX data is refused with the file and the fault", "[data][mnist][errors]") {
  const std::string good = test::idx_bytes({2, 2, 2});
  std::string wrong_magic = good;
  wrong_magic[0] = 'P';
  CHECK_THROWS_MATCHES(parse_idx(wrong_magic, "bad.idx"), Error,
                       MessageContains({"bad.idx", "wrong magic number"}));
  std::string other_type = good;
  other_type[2] = 0x0D;
  CHECK_THROWS_MATCHES(parse_idx(other_type, "floats.idx"), Error,
                       MessageContains({"floats.idx", "element type 0xd"}));
  std::string no_dims = good;
  no_dims[3] = 0;
  CHECK_THROWS_MATCHES(parse_idx(no_dims, "nodims.idx"), Error,
                       MessageContains({"nodims.idx", "dimensions"}));
  CHECK_THROWS_MATCHES(parse_idx(good.substr(0, 3), "tiny.idx"), Error,
                       MessageContains({"tiny.idx", "truncated"}));
  CHECK_THROWS_MATCHES(parse_idx(good.substr(0, 9), "header.idx"), Error,
                       MessageContains({"header.idx", "truncated IDX header"}));
  CHECK_THROWS_MATCHES(parse_idx(good.substr(0, good.size() - 1), "short.idx"), Error,
                       MessageContains({"short.idx", "truncated IDX data"}));
  CHECK_THROWS_MATCHES(parse_idx(good + "x", "long.idx"), Error,
                       MessageContains({"long.idx", "left over"}));
  // An empty array whose other sizes multiply past 2^63 (found by fuzz_idx).
  CHECK_THROWS_MATCHES(
      parse_idx(test::idx_header({0, 0x03000000u, 0xbf000000u, 0xbf000000u}), "overflow.idx"),
      Error, MessageContains({"overflow.idx", "overflow"}));
  CHECK_THROWS_MATCHES(
      parse_idx(test::idx_header({0xffffffffu, 0xffffffffu, 0xffffffffu}) + "data", "huge"), Error,
      MessageContains({"huge", "overflow"}));
  CHECK_THROWS_MATCHES(parse_idx(test::idx_header({0xffffu, 0xffffu, 0xffffu}) + "data", "big"),
                       Error, MessageContains({"big", "truncated IDX data"}));
}

TEST_CASE("corrupt gzip streams are refused with the file and the fault", "[data][mnist][errors]") {
  const std::string packed = test::gzip_bytes(test::idx_bytes({40, 28, 28}));
  CHECK_THROWS_MATCHES(parse_idx(packed.substr(0, packed.size() / 2), "cut.gz"), Error,
                       MessageContains({"cut.gz", "truncated gzip"}));
  std::string scrambled = packed;
  for (std::size_t i = 10; i < 40; ++i) scrambled[i] = static_cast<char>(0xff);
  CHECK_THROWS_MATCHES(parse_idx(scrambled, "scrambled.gz"), Error,
                       MessageContains({"scrambled.gz", "corrupt gzip"}));
  CHECK_THROWS_MATCHES(gunzip(packed, "bomb.gz", 1000), Error,
                       MessageContains({"bomb.gz", "more than 1000 bytes"}));
  CHECK(gunzip(packed, "fine.gz").size() == 4 + 4 * 3 + 40 * 28 * 28);
  CHECK_THROWS_MATCHES(gunzip(packed + "junk", "tail.gz"), Error,
                       MessageContains({"tail.gz",
                                        "data that is not gzip follows the last gzip "
                                        "member (4 bytes from byte"}));
  CHECK_THROWS_MATCHES(gunzip(packed + "\x1f\x8bjunk", "fake.gz"), Error,
                       MessageContains({"fake.gz", "corrupt gzip"}));
  CHECK(gunzip(packed + std::string(512, '\0'), "padded.gz").size() == 4 + 4 * 3 + 40 * 28 * 28);
  // The size a member states at its end sizes the buffer, but zlib checks it: a lie is refused.
  std::string lying = packed;
  lying.replace(lying.size() - 4, 4, "\xff\xff\xff\xff");
  CHECK_THROWS_MATCHES(gunzip(lying, "lying.gz"), Error, MessageContains({"lying.gz", "corrupt"}));
}

TEST_CASE("read_file reads files whose size is not known beforehand", "[data][mnist]") {
  test::TempDir dir;
  const std::string bytes = test::idx_bytes({5, 7});
  test::write_bytes(dir.file("plain.idx"), bytes);
  CHECK(read_file(dir.file("plain.idx")) == bytes);
  test::write_bytes(dir.file("empty"), "");
  CHECK(read_file(dir.file("empty")).empty());
  // A pipe has no size; 200 KB through it take several reads and a growing buffer.
  const std::string fifo = dir.file("pipe");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const std::string large = test::idx_bytes({200, 1000});
  std::thread writer([&] { test::write_bytes(fifo, large); });
  std::string through_pipe;
  try {
    through_pipe = read_file(fifo);
  } catch (...) {
    std::ifstream drain(fifo, std::ios::binary);  // the writer waits for a reader: not a hang
    drain.ignore(std::numeric_limits<std::streamsize>::max());
    writer.join();
    throw;
  }
  writer.join();
  CHECK(through_pipe == large);
  // /proc files state a size of 0.
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) {
    WARN("skipped: no /proc on this system");
    return;
  }
  const std::string expected{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  CHECK(read_file("/proc/self/cmdline") == expected);
}

TEST_CASE("load_mnist refuses inconsistent files", "[data][mnist][errors]") {
  test::TempDir dir;
  const std::string root = dir.path().string();
  CHECK_THROWS_MATCHES(load_mnist(root + "/absent", Split::train), Error,
                       MessageContains({"absent", "does not exist"}));
  CHECK_THROWS_MATCHES(load_mnist(root, Split::test), Error,
                       MessageContains({"t10k-images-idx3-ubyte", "exists"}));

  const std::string images = dir.file("train-images-idx3-ubyte");
  const std::string labels = dir.file("train-labels-idx1-ubyte");
  test::write_bytes(images, test::idx_bytes({3, 2, 3}));
  test::write_bytes(labels, test::idx_bytes({4}, {1, 2, 3, 4}));
  CHECK_THROWS_MATCHES(load_mnist(root, Split::train), Error,
                       MessageContains({images, labels, "3 images", "4 labels", "disagree"}));

  test::write_bytes(labels, test::idx_bytes({3}, {1, 10, 3}));
  CHECK_THROWS_MATCHES(load_mnist(root, Split::train), Error,
                       MessageContains({labels, "label 10", "sample 1", "out of range"}));

  test::write_bytes(labels, test::idx_bytes({3, 1}));
  CHECK_THROWS_MATCHES(load_mnist(root, Split::train), Error,
                       MessageContains({labels, "expected labels [N]"}));

  test::write_bytes(images, test::idx_bytes({6, 3}));
  CHECK_THROWS_MATCHES(load_mnist(root, Split::train), Error,
                       MessageContains({images, "expected images [N, rows, cols]"}));

  std::filesystem::remove(images);
  std::filesystem::create_directory(images);
  CHECK_THROWS_MATCHES(load_mnist(root, Split::train), Error,
                       MessageContains({images, "is a directory"}));
}
