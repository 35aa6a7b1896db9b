// Image decoding and ImageFolder on images the test writes with stb_image_write.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "data/file_bytes.hpp"
#include "data/image.hpp"
#include "data/image_folder.hpp"
#include "data/loader.hpp"
#include "data/transforms.hpp"
#include "fixtures.hpp"
#include "tensor/error_matcher.hpp"

using namespace ds;
using namespace ds::data;
using ds::testing::MessageContains;

namespace {

// A [channels, height, width] image whose value at (c, y, x) is 10 c + 3 y + x + seed.
Tensor pattern(std::int64_t channels, std::int64_t height, std::int64_t width, int seed) {
  std::vector<std::uint8_t> values;
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t y = 0; y < height; ++y) {
      for (std::int64_t x = 0; x < width; ++x) {
        values.push_back(static_cast<std::uint8_t>(10 * c + 3 * y + x + seed));
      }
    }
  }
  return Tensor::from_vector(values, {channels, height, width});
}

// BMP is uncompressed and simple enough to write by hand: 24-bit, bottom-up, BGR rows padded
// to four bytes.
std::string bmp_bytes(const Tensor& rgb) {
  const auto height = static_cast<std::uint32_t>(rgb.size(1));
  const auto width = static_cast<std::uint32_t>(rgb.size(2));
  const std::uint32_t row = (3 * width + 3) / 4 * 4;
  const std::uint32_t size = 54 + row * height;
  std::string out = "BM";
  const auto u32 = [&out](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  const auto u16 = [&out](std::uint16_t v) {
    out.push_back(static_cast<char>(v));
    out.push_back(static_cast<char>(v >> 8));
  };
  u32(size), u32(0), u32(54), u32(40), u32(width), u32(height), u16(1), u16(24), u32(0),
      u32(row * height), u32(2835), u32(2835), u32(0), u32(0);
  const std::vector<std::uint8_t> v = rgb.to_vector<std::uint8_t>();
  for (std::uint32_t y = height; y-- > 0;) {
    for (std::uint32_t x = 0; x < width; ++x) {
      for (int c = 2; c >= 0; --c)
        out.push_back(static_cast<char>(v[(c * height + y) * width + x]));
    }
    out.append(row - 3 * width, '\0');
  }
  return out;
}

}  // namespace

TEST_CASE("PNG and BMP decode losslessly to RGB [3, H, W]", "[data][image]") {
  test::TempDir dir;
  const Tensor rgb = pattern(3, 5, 7, 1);
  write_png(dir.file("rgb.png"), rgb);
  CHECK(read_image(dir.file("rgb.png")).to_vector<std::uint8_t>() == rgb.to_vector<std::uint8_t>());
  test::write_bytes(dir.file("rgb.bmp"), bmp_bytes(rgb));
  CHECK(read_image(dir.file("rgb.bmp")).to_vector<std::uint8_t>() == rgb.to_vector<std::uint8_t>());

  // Grey is replicated into three channels; alpha is dropped.
  const Tensor grey = pattern(1, 4, 6, 2);
  write_png(dir.file("grey.png"), grey);
  const Tensor grey_rgb = read_image(dir.file("grey.png"));
  REQUIRE(grey_rgb.shape() == Shape{3, 4, 6});
  for (std::int64_t c = 0; c < 3; ++c) {
    CHECK(grey_rgb.select(0, c).to_vector<std::uint8_t>() == grey.to_vector<std::uint8_t>());
  }
  const Tensor rgba = pattern(4, 3, 5, 3);
  write_png(dir.file("rgba.png"), rgba);
  CHECK(read_image(dir.file("rgba.png")).to_vector<std::uint8_t>() ==
        rgba.narrow(0, 0, 3).to_vector<std::uint8_t>());
  const Tensor grey_alpha = pattern(2, 3, 3, 4);
  write_png(dir.file("ga.png"), grey_alpha);
  CHECK(read_image(dir.file("ga.png")).select(0, 2).to_vector<std::uint8_t>() ==
        grey_alpha.select(0, 0).to_vector<std::uint8_t>());
}

TEST_CASE("a JPEG of a flat colour decodes to that colour", "[data][image]") {
  test::TempDir dir;
  Tensor flat = Tensor::empty({3, 16, 24}, DType::u8);
  for (std::int64_t c = 0; c < 3; ++c) flat.select(0, c).fill_(40.0 + 80.0 * c);
  write_jpeg(dir.file("flat.jpg"), flat, 95);
  const std::vector<std::uint8_t> decoded =
      read_image(dir.file("flat.jpg")).to_vector<std::uint8_t>();
  REQUIRE(decoded.size() == 3u * 16 * 24);
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    const int expected = 40 + 80 * static_cast<int>(i / (16 * 24));
    REQUIRE(std::abs(decoded[i] - expected) <= 2);
  }
}

TEST_CASE("broken images are refused with the file and the fault", "[data][image][errors]") {
  test::TempDir dir;
  write_png(dir.file("good.png"), pattern(3, 8, 8, 0));
  const std::string png = read_file(dir.file("good.png"));
  CHECK_THROWS_MATCHES(decode_image("", "empty.png"), Error,
                       MessageContains({"empty.png", "cannot decode image", "empty"}));
  CHECK_THROWS_MATCHES(decode_image("GIF89a not supported", "anim.gif"), Error,
                       MessageContains({"anim.gif", "cannot decode image"}));
  CHECK_THROWS_MATCHES(decode_image(png.substr(0, png.size() / 2), "half.png"), Error,
                       MessageContains({"half.png", "cannot decode image"}));
  std::string corrupt = png;
  for (std::size_t i = 40; i < corrupt.size() - 12; ++i) corrupt[i] = static_cast<char>(i * 13);
  CHECK_THROWS_MATCHES(decode_image(corrupt, "corrupt.png"), Error,
                       MessageContains({"corrupt.png", "cannot decode image"}));
  // A JPEG cut after its header.
  write_jpeg(dir.file("cut.jpg"), pattern(3, 16, 16, 0));
  const std::string jpeg = read_file(dir.file("cut.jpg"));
  CHECK_THROWS_MATCHES(decode_image(jpeg.substr(0, 200), "cut.jpg"), Error,
                       MessageContains({"cut.jpg", "cannot decode image"}));
  // A Huffman table claiming 16 x 255 codes overruns stb_image 2.27 (found by fuzz_image).
  const std::size_t dht = jpeg.find("\xff\xc4");
  REQUIRE(dht != std::string::npos);
  std::string oversized = jpeg;
  for (std::size_t i = dht + 5; i < dht + 21; ++i) oversized[i] = static_cast<char>(0xff);
  CHECK_THROWS_MATCHES(decode_image(oversized, "dht.jpg"), Error,
                       MessageContains({"dht.jpg", "Huffman table"}));
  // A BMP header claiming 100000 x 100000 pixels is refused before any allocation.
  std::string huge = bmp_bytes(pattern(3, 1, 1, 0));
  for (int offset : {18, 22}) {
    const std::uint32_t side = 100000;
    for (int i = 0; i < 4; ++i) huge[offset + i] = static_cast<char>(side >> (8 * i));
  }
  CHECK_THROWS_MATCHES(decode_image(huge, "huge.bmp"), Error,
                       MessageContains({"huge.bmp", "cannot decode image"}));
  CHECK_THROWS_MATCHES(read_image(dir.file("absent.png")), Error,
                       MessageContains({"absent.png", "cannot open"}));
}

TEST_CASE("ImageFolder numbers sorted class folders and sorts their files", "[data][image]") {
  test::TempDir dir;
  // Written out of order, in mixed formats and case; the text file is not an image.
  write_png(dir.file("dog/b.PNG"), pattern(3, 4, 4, 20));
  write_png(dir.file("cat/z.png"), pattern(1, 4, 4, 10));
  test::write_bytes(dir.file("cat/a.bmp"), bmp_bytes(pattern(3, 4, 4, 0)));
  write_jpeg(dir.file("dog/sub/a.jpg"), pattern(3, 4, 4, 30));
  test::write_bytes(dir.file("dog/notes.txt"), "not an image");
  write_png(dir.file("ant/only.png"), pattern(3, 2, 3, 5));

  const ImageFolder folder(dir.path().string());
  CHECK(folder.classes() == std::vector<std::string>{"ant", "cat", "dog"});
  CHECK(folder.num_classes() == 3);
  REQUIRE(folder.size() == 5);
  const std::vector<std::string> names = {"ant/only.png", "cat/a.bmp", "cat/z.png", "dog/b.PNG",
                                          "dog/sub/a.jpg"};
  const std::vector<std::int32_t> labels = {0, 1, 1, 2, 2};
  for (std::int64_t i = 0; i < folder.size(); ++i) {
    CHECK(folder.path(i) == (dir.path() / names[i]).string());
    CHECK(folder.label(i) == labels[i]);
  }
  const Example first = folder.get(1);
  CHECK(first.label == 1);
  CHECK(first.image.to_vector<std::uint8_t>() == pattern(3, 4, 4, 0).to_vector<std::uint8_t>());
  CHECK(folder.get(0).image.shape() == Shape{3, 2, 3});
  CHECK(folder.get(2).image.shape() == Shape{3, 4, 4});
}

TEST_CASE("ImageFolder refuses missing and empty folders and names unreadable images",
          "[data][image][errors]") {
  test::TempDir dir;
  const std::string root = dir.path().string();
  CHECK_THROWS_MATCHES(ImageFolder(root + "/missing"), Error,
                       MessageContains({"missing", "does not exist"}));
  test::write_bytes(dir.file("loose.png"), "x");
  CHECK_THROWS_MATCHES(ImageFolder(root), Error, MessageContains({root, "no class sub-folders"}));
  write_png(dir.file("full/a.png"), pattern(3, 2, 2, 0));
  test::write_bytes(dir.file("empty/readme.txt"), "no images here");
  CHECK_THROWS_MATCHES(ImageFolder(root), Error,
                       MessageContains({(dir.path() / "empty").string(), "is empty"}));
  std::filesystem::remove_all(dir.path() / "empty");

  test::write_bytes(dir.file("full/b.png"), "this is not a PNG");
  const ImageFolder folder(root);
  CHECK(folder.get(0).label == 0);
  CHECK_THROWS_MATCHES(
      folder.get(1), Error,
      MessageContains({(dir.path() / "full" / "b.png").string(), "cannot decode image"}));
  CHECK_THROWS_MATCHES(folder.get(2), Error, MessageContains({"sample index 2", "[0, 2)"}));
}

TEST_CASE("a batch of images of different sizes names both files", "[data][image][errors]") {
  test::TempDir dir;
  write_png(dir.file("cat/a.png"), pattern(3, 4, 4, 0));
  write_png(dir.file("cat/b.png"), pattern(3, 4, 5, 0));
  const auto folder = std::make_shared<ImageFolder>(dir.path().string());
  CHECK(folder->sample_name(1) == (dir.path() / "cat" / "b.png").string());
  DataLoader loader(folder, to_tensor(), {.batch_size = 2, .shuffle = false});
  loader.start_epoch(0);
  CHECK_THROWS_MATCHES(loader.next(), Error,
                       MessageContains({(dir.path() / "cat" / "b.png").string() + " has shape",
                                        (dir.path() / "cat" / "a.png").string() + ") has"}));
}
