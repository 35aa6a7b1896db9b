// The weights file: round trips of every dtype, a file exported from PyTorch reproducing its
// logits, every kind of bad file, all-or-nothing loading and the atomic save.
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/io/atomic_file.hpp"
#include "nn/io/safetensors.hpp"
#include "nn/layers.hpp"
#include "support/golden.hpp"
#include "tensor/ops.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using ds::Tensor;
using ds::nn::NamedTensor;

namespace {

const std::string kFixture = DS_WEIGHTS_DIR "/small_model.safetensors";

// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "ds-weights-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string little_endian_u64(std::uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A safetensors file from its header text and data section, each written as given.
std::string file_bytes(const std::string& header, const std::string& data) {
  return little_endian_u64(header.size()) + header + data;
}

std::string data_section(const std::string& file) {
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, file.data(), 8);
  return file.substr(8 + header_size);
}

// The raw bytes of a tensor in logical order: compares NaNs and signed zeros exactly.
std::string bytes_of(const Tensor& tensor) {
  const Tensor dense = tensor.contiguous();
  const auto* begin = static_cast<const char*>(dense.data_ptr());
  return {begin, begin + dense.numel() * ds::dtype_size(dense.dtype())};
}

void require_same(const NamedTensor& actual, const NamedTensor& expected) {
  INFO(expected.name);
  CHECK(actual.name == expected.name);
  CHECK(actual.tensor.dtype() == expected.tensor.dtype());
  CHECK(actual.tensor.shape() == expected.tensor.shape());
  CHECK(bytes_of(actual.tensor) == bytes_of(expected.tensor));
}

// Must match small_model() in generate_fixture.py.
std::shared_ptr<ds::nn::Sequential> small_model() {
  using namespace ds::nn;
  return make<Sequential>(std::vector<ModulePtr>{make<Conv2d>(Conv2dOptions::square(3, 4, 3, 1, 1)),
                                                 batch_norm2d(4), make<ReLU>(), make<MaxPool2d>(2),
                                                 make<Flatten>(1), make<Linear>(36, 5)});
}

std::vector<std::string> snapshot(const ds::nn::Module& module) {
  std::vector<std::string> state;
  for (const auto& entry : module.state_dict()) state.push_back(bytes_of(entry.tensor));
  return state;
}

}  // namespace

TEST_CASE("every dtype survives a round trip, with the metadata") {
  TempDir dir;
  const auto f32 =
      Tensor::from_vector<float>({1.5f, -0.0f, std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN(), 3e-39f, -7.25f},
                                 {2, 3});
  const std::vector<NamedTensor> tensors = {
      {"f32", f32},
      {"f64", Tensor::from_vector<double>({0.1, -1e300, 2.0, 1e-310}, {4})},
      {"i32", Tensor::from_vector<std::int32_t>({std::numeric_limits<std::int32_t>::min(), -1, 0,
                                                 std::numeric_limits<std::int32_t>::max()},
                                                {2, 2})},
      {"i8", Tensor::from_vector<std::int8_t>({-128, 0, 127}, {3})},
      {"u8", Tensor::from_vector<std::uint8_t>({0, 1, 128, 254, 255}, {5})},
      {"scalar", Tensor::scalar(42.5)},
      {"empty", Tensor::zeros({0, 3})},
      {"transposed", f32.t()},
      {"bn.num_batches_tracked", Tensor::from_vector<std::int32_t>({-7}, {})},
  };
  const ds::nn::WeightsMetadata metadata = {{"format", "pt"}, {"note", "ünïcode \"quoted\""}};
  const std::string path = dir / "all.safetensors";
  ds::nn::save_safetensors(path, tensors, metadata);

  const auto loaded = ds::nn::read_safetensors(path);
  REQUIRE(loaded.tensors.size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) require_same(loaded.tensors[i], tensors[i]);
  CHECK(loaded.metadata == metadata);
  CHECK(ds::nn::load_safetensors(path).size() == tensors.size());
  CHECK_FALSE(fs::exists(path + ".tmp"));

  // The layout PyTorch's reader expects: batch counters as I64, data 8-byte aligned.
  const std::string bytes = read_file(path);
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  CHECK(header_size % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  CHECK(header["bn.num_batches_tracked"]["dtype"] == "I64");
  CHECK(header["i32"]["dtype"] == "I32");
  CHECK(header["u8"]["dtype"] == "U8");
  CHECK(header["transposed"]["shape"] == nlohmann::json::array({3, 2}));
  const auto data_end = header["bn.num_batches_tracked"]["data_offsets"][1].get<std::uint64_t>();
  CHECK(bytes.size() == 8 + header_size + data_end);
}

TEST_CASE("I64 tensors load as i32 and out-of-range values are refused") {
  TempDir dir;
  const auto write_i64 = [&](std::int64_t a, std::int64_t b) {
    std::string data(16, '\0');
    std::memcpy(data.data(), &a, 8);
    std::memcpy(data.data() + 8, &b, 8);
    const std::string path = dir / "i64.safetensors";
    write_file(path,
               file_bytes(R"({"steps":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}})", data));
    return path;
  };
  const auto loaded = ds::nn::load_safetensors(write_i64(-5, 2147483647));
  REQUIRE(loaded.size() == 1);
  CHECK(loaded[0].tensor.dtype() == ds::DType::i32);
  CHECK(loaded[0].tensor.to_vector<std::int32_t>() == std::vector<std::int32_t>{-5, 2147483647});

  const std::string path = write_i64(1, std::int64_t{1} << 40);
  REQUIRE_THROWS_WITH(ds::nn::load_safetensors(path),
                      Contains(path) && Contains("'steps'") && Contains("1099511627776"));
}

TEST_CASE("a file exported from PyTorch reproduces its logits") {
  const ds::test::GoldenFile golden(DS_WEIGHTS_DIR "/small_model.golden");
  auto model = small_model();
  ds::nn::load_weights(*model, kFixture);
  model->eval();

  const auto state = model->state_dict();
  CHECK(state[6].name == "1.num_batches_tracked");
  CHECK(state[6].tensor.item() == 3);
  const auto logits = (*model)(golden.get("small_model/input"));
  const auto close = ds::test::allclose(logits, golden.get("small_model/logits"), 1e-4, 1e-5);
  INFO(close.message);
  CHECK(close);

  const auto file = ds::nn::read_safetensors(kFixture);
  CHECK(file.metadata.at("format") == "pt");

  // Saved again, the data section is PyTorch's byte for byte (I64 batch counter included).
  TempDir dir;
  ds::nn::save_weights(*model, dir / "again.safetensors", file.metadata);
  CHECK(data_section(read_file(dir / "again.safetensors")) == data_section(read_file(kFixture)));
  const auto again = ds::nn::read_safetensors(dir / "again.safetensors");
  REQUIRE(again.tensors.size() == file.tensors.size());
  for (std::size_t i = 0; i < again.tensors.size(); ++i)
    require_same(again.tensors[i], file.tensors[i]);
}

TEST_CASE("bad files throw ds::Error naming the file and the key") {
  TempDir dir;
  const std::string path = dir / "bad.safetensors";
  const std::string four_floats(16, '\0');
  const std::string fixture = read_file(kFixture);
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> expected;  // substrings of the message, besides the path
  };
  const std::vector<Case> cases = {
      {"empty file", "", {"truncated"}},
      {"short length", std::string(3, '\x10'), {"truncated"}},
      {"absurd header length", little_endian_u64(std::uint64_t{1} << 40) + "{}", {"absurd"}},
      {"header past the end", little_endian_u64(1000) + "{\"a\":1}", {"truncated", "1000"}},
      {"header cut short", fixture.substr(0, 100), {"truncated"}},
      {"data cut short", fixture.substr(0, fixture.size() - 10), {"truncated", "'5.bias'"}},
      {"header not JSON", file_bytes("{\"w\": [1, 2", ""), {"not valid JSON"}},
      {"header not an object", file_bytes("[1, 2]", ""), {"not a JSON object"}},
      {"entry not an object", file_bytes(R"({"w": 3})", ""), {"'w'", "not a JSON object"}},
      {"missing dtype",
       file_bytes(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", four_floats),
       {"'w'", "missing field 'dtype'"}},
      {"missing shape",
       file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", four_floats),
       {"'w'", "missing field 'shape'"}},
      {"missing offsets",
       file_bytes(R"({"w":{"dtype":"F32","shape":[4]}})", four_floats),
       {"'w'", "missing field 'data_offsets'"}},
      {"unknown dtype",
       file_bytes(R"({"w":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}})", four_floats),
       {"'w'", "unknown dtype 'F16'"}},
      {"negative dim",
       file_bytes(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", four_floats),
       {"'w'", "non-negative"}},
      {"shape too large",
       file_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
                  four_floats),
       {"'w'", "too large"}},
      {"size disagrees with dtype",
       file_bytes(R"({"w":{"dtype":"F64","shape":[4],"data_offsets":[0,16]}})", four_floats),
       {"'w'", "need 32 bytes", "span 16"}},
      {"offsets reversed",
       file_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}})", four_floats),
       {"'w'", "end before they begin"}},
      {"offsets not a pair",
       file_bytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", four_floats),
       {"'w'", "[begin, end]"}},
      {"offsets past the data",
       file_bytes(R"({"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", four_floats),
       {"'w'", "truncated"}},
      {"overlapping tensors",
       file_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                  R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                  four_floats),
       {"'b'", "overlaps"}},
      {"gap between tensors",
       file_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}})",
                  four_floats),
       {"'b'", "gap"}},
      {"bytes after the last tensor",
       file_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})", four_floats),
       {"4 bytes", "no key"}},
      {"metadata not strings",
       file_bytes(R"({"__metadata__":{"epoch":3}})", ""),
       {"'__metadata__'", "'epoch'"}},
  };
  for (const auto& bad : cases) {
    INFO(bad.what);
    write_file(path, bad.bytes);
    try {
      ds::nn::load_safetensors(path);
      FAIL("no error for " << bad.what);
    } catch (const ds::Error& error) {
      const std::string message = error.what();
      INFO(message);
      CHECK_THAT(message, Contains(path));
      for (const auto& part : bad.expected) CHECK_THAT(message, Contains(part));
    }
  }
  REQUIRE_THROWS_WITH(ds::nn::load_safetensors(dir / "absent.safetensors"),
                      Contains("absent.safetensors") && Contains("cannot read"));
}

TEST_CASE("a failed load leaves the model unchanged") {
  TempDir dir;
  const auto state = ds::nn::load_safetensors(kFixture);
  const auto save_changed = [&](const std::string& name, auto change) {
    auto changed = state;
    change(changed);
    const std::string path = dir / (name + ".safetensors");
    ds::nn::save_safetensors(path, changed);
    return path;
  };
  const auto find = [](std::vector<NamedTensor>& tensors, const std::string& key) -> Tensor& {
    for (auto& entry : tensors)
      if (entry.name == key) return entry.tensor;
    throw std::runtime_error(key);
  };

  struct Case {
    std::string path, key, what;
  };
  const std::vector<Case> cases = {
      {save_changed("wrong_dtype",
                    [&](auto& t) { find(t, "5.weight") = find(t, "5.weight").to(ds::DType::f64); }),
       "'5.weight'", "f64"},
      {save_changed("wrong_shape", [&](auto& t) { find(t, "0.bias") = Tensor::zeros({5}); }),
       "'0.bias'", "[5]"},
      {save_changed("missing", [](auto& t) { t.erase(t.begin() + 3); }), "'1.bias'", "missing"},
      {save_changed("unexpected",
                    [](auto& t) {
                      t.push_back({"6.weight", Tensor::zeros({2})});
                    }),
       "'6.weight'", "unexpected"},
  };
  const std::string truncated = dir / "truncated.safetensors";
  write_file(truncated, read_file(kFixture).substr(0, 1900));

  auto model = small_model();
  const auto before = snapshot(*model);
  for (const auto& bad : cases) {
    INFO(bad.path);
    REQUIRE_THROWS_WITH(ds::nn::load_weights(*model, bad.path),
                        Contains(bad.path) && Contains(bad.key) && Contains(bad.what));
    CHECK(snapshot(*model) == before);
  }
  REQUIRE_THROWS_WITH(ds::nn::load_weights(*model, truncated),
                      Contains(truncated) && Contains("truncated"));
  CHECK(snapshot(*model) == before);

  ds::nn::load_weights(*model, kFixture);
  CHECK(snapshot(*model) != before);
}

namespace stop_during_save {
// What the test's own SIGINT handler saw when it ran; access() is safe in a handler.
const char* target = nullptr;
const char* temp = nullptr;
volatile std::sig_atomic_t calls = 0, target_existed = 0, temp_existed = 0;
extern "C" void observe(int) {
  calls = calls + 1;
  target_existed = ::access(target, F_OK) == 0;
  temp_existed = ::access(temp, F_OK) == 0;
}
}  // namespace stop_during_save

TEST_CASE("a stop signal during a save is acted on once the file is complete; a second at once") {
  namespace watch = stop_during_save;
  TempDir dir;
  const std::string path = dir / "train_log.csv";
  const std::string temp = path + ".tmp";
  watch::target = path.c_str();
  watch::temp = temp.c_str();
  watch::calls = 0;
  struct sigaction observer {
  }, before{};
  observer.sa_handler = watch::observe;
  REQUIRE(sigaction(SIGINT, &observer, &before) == 0);
  const bool twice = GENERATE(false, true);
  INFO((twice ? "Ctrl-C twice" : "Ctrl-C once"));

  ds::nn::write_file_atomically(path, "log", [&](std::FILE* file, const std::string& name) {
    ds::nn::write_bytes(file, "epoch", 5, name);
    std::raise(SIGINT);  // as if Ctrl-C were pressed now
    CHECK(watch::calls == 0);
    if (twice) {
      std::raise(SIGINT);
      CHECK(watch::calls == 1);
      CHECK(watch::temp_existed == 1);
      CHECK(watch::target_existed == 0);
    }
    ds::nn::write_bytes(file, "\n", 1, name);
  });
  struct sigaction after {};
  sigaction(SIGINT, &before, &after);

  CHECK(watch::calls == 1);  // the second request was acted on in its place
  if (!twice) {
    CHECK(watch::target_existed == 1);
    CHECK(watch::temp_existed == 0);
  }
  CHECK(read_file(path) == "epoch\n");
  CHECK(after.sa_handler == watch::observe);  // the handler found is put back
}

TEST_CASE("saving is atomic: a failed save keeps the file that was there") {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  const std::vector<NamedTensor> first = {{"w", Tensor::ones({3})}};
  const std::vector<NamedTensor> second = {{"w", Tensor::full({4}, 2.0)}};
  ds::nn::save_safetensors(path, first);
  const std::string original = read_file(path);
  const auto unchanged = [&] {
    CHECK(read_file(path) == original);
    CHECK_FALSE(fs::exists(fs::symlink_status(path + ".tmp")));
  };

  SECTION("the temporary file cannot be created") {
    fs::create_directory(path + ".tmp");
    REQUIRE_THROWS_WITH(ds::nn::save_safetensors(path, second),
                        Contains(path) && Contains("cannot create"));
    CHECK(read_file(path) == original);
    CHECK(fs::is_directory(path + ".tmp"));
  }
  SECTION("writing fails half way (disk full)") {
    if (!fs::exists("/dev/full")) {
      WARN("skipped: no /dev/full on this system");
      return;
    }
    fs::create_symlink("/dev/full", path + ".tmp");
    REQUIRE_THROWS_WITH(ds::nn::save_safetensors(path, second),
                        Contains(path) && Contains("cannot write"));
    unchanged();
    // The trainers' text records go the same way, with the system's reason.
    const std::string log = dir / "train_log.csv";
    ds::nn::write_text_atomically(log, "epoch\n");
    fs::create_symlink("/dev/full", log + ".tmp");
    REQUIRE_THROWS_WITH(ds::nn::write_text_atomically(log, std::string(1 << 16, 'x')),
                        Contains(log) && Contains("No space left"));
    CHECK(read_file(log) == "epoch\n");
    CHECK_FALSE(fs::exists(fs::symlink_status(log + ".tmp")));
  }
  SECTION("the rename fails") {
    const std::string directory = dir / "occupied";
    fs::create_directories(directory + "/inside");
    REQUIRE_THROWS_WITH(ds::nn::save_safetensors(directory, second),
                        Contains(directory) && Contains("cannot rename"));
    CHECK(fs::is_directory(directory + "/inside"));
    CHECK_FALSE(fs::exists(directory + ".tmp"));
  }
  SECTION("the folder does not exist") {
    const std::string nowhere = dir / "missing/model.safetensors";
    REQUIRE_THROWS_WITH(ds::nn::save_safetensors(nowhere, second), Contains(nowhere));
    CHECK_FALSE(fs::exists(dir / "missing"));
  }
  SECTION("bad names are refused before anything is written") {
    REQUIRE_THROWS_WITH(ds::nn::save_safetensors(path, {second[0], second[0]}),
                        Contains(path) && Contains("'w' appears twice"));
    REQUIRE_THROWS_WITH(ds::nn::save_safetensors(path, {{"__metadata__", Tensor::ones({1})}}),
                        Contains("reserved"));
    unchanged();
  }
  SECTION("a successful save replaces the file") {
    ds::nn::save_safetensors(path, second);
    require_same(ds::nn::load_safetensors(path).at(0), second[0]);
    CHECK_FALSE(fs::exists(path + ".tmp"));
  }
}
