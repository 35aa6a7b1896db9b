#include "support/golden.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <utility>

#include "tensor/error.hpp"

namespace ds::test {
namespace {

DType parse_dtype(const std::string& name, const std::string& where) {
  static const std::pair<const char*, DType> kNames[] = {
      {"f32", DType::f32}, {"f64", DType::f64}, {"i32", DType::i32},
      {"i8", DType::i8},   {"u8", DType::u8},
  };
  for (const auto& [text, dtype] : kNames) {
    if (name == text) return dtype;
  }
  fail(where, ": unknown dtype '", name, "'");
}

double parse_number(const std::string& token, const std::string& where) {
  // from_chars is locale-independent and reads every value %.17g writes, nan and inf included.
  double value = 0.0;
  const char* first = token.data();
  const char* last = first + token.size();
  const auto [end, error] = std::from_chars(first, last, value);
  if (error != std::errc() || end != last) fail(where, ": bad number '", token, "'");
  return value;
}

std::int64_t parse_count(const std::string& token, const std::string& where) {
  std::int64_t value = 0;
  const char* last = token.data() + token.size();
  const auto [end, error] = std::from_chars(token.data(), last, value);
  if (error != std::errc() || end != last || value < 0) {
    fail(where, ": bad dimension '", token, "'");
  }
  return value;
}

std::string index_str(std::int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(index);
}

// The shortest text that reads back to the same double: 5.1, not 5.0999999999999996.
std::string shortest(double value) {
  char text[32];
  const auto result = std::to_chars(text, text + sizeof text, value);
  return std::string(text, result.ptr);
}

bool close(double actual, double expected, double rtol, double atol) {
  if (std::isnan(expected) || std::isnan(actual)) return std::isnan(expected) && std::isnan(actual);
  if (std::isinf(expected) || std::isinf(actual)) return actual == expected;
  return std::abs(actual - expected) <= atol + rtol * std::abs(expected);
}

}  // namespace

GoldenFile::GoldenFile(const std::string& path) : path_(path) {
  std::ifstream in(path);
  if (!in) fail("golden file ", path, ": cannot open it");
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = concat(path, ":", number);
    std::istringstream words(line);
    std::string kind;
    if (!(words >> kind) || kind[0] == '#') continue;
    if (kind == "case") {
      std::string name;
      if (!(words >> name)) fail(where, ": 'case' without a name");
      cases_.push_back(name);
      continue;
    }
    if (kind != "tensor") fail(where, ": expected 'case', 'tensor' or a '#' comment");

    std::string key, dtype_name, token;
    if (!(words >> key >> dtype_name >> token)) fail(where, ": truncated tensor header");
    if (cases_.empty() || key.rfind(cases_.back() + "/", 0) != 0) {
      fail(where, ": key '", key, "' does not belong to the case declared above it");
    }
    Entry entry{parse_dtype(dtype_name, where), {}, {}};
    const std::int64_t ndim = parse_count(token, where);
    for (std::int64_t d = 0; d < ndim; ++d) {
      if (!(words >> token)) fail(where, ": ", key, " has fewer dims than its ndim ", ndim);
      entry.shape.push_back(parse_count(token, where));
    }
    if (!(words >> token) || token != ":") fail(where, ": expected ':' after the shape of ", key);
    while (words >> token) entry.values.push_back(parse_number(token, where));
    if (static_cast<std::int64_t>(entry.values.size()) != numel_of(entry.shape)) {
      fail(where, ": ", key, " has ", entry.values.size(), " values for shape ",
           shape_str(entry.shape));
    }
    if (!entries_.emplace(key, std::move(entry)).second) fail(where, ": duplicate key ", key);
  }
}

bool GoldenFile::contains(const std::string& key) const { return entries_.count(key) != 0; }

Tensor GoldenFile::get(const std::string& key) const {
  const auto found = entries_.find(key);
  if (found == entries_.end()) fail("golden file ", path_, ": no tensor '", key, "'");
  const Entry& entry = found->second;
  return dispatch_dtype(entry.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    std::vector<T> values;
    values.reserve(entry.values.size());
    for (double v : entry.values) values.push_back(static_cast<T>(v));
    return Tensor::from_vector(values, entry.shape);
  });
}

std::vector<double> values_of(const Tensor& tensor) {
  return dispatch_dtype(tensor.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::vector<T> typed = tensor.to_vector<T>();
    return std::vector<double>(typed.begin(), typed.end());
  });
}

CloseResult allclose(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  if (!actual.defined() || !expected.defined()) {
    return {false,
            actual.defined() ? "expected tensor is undefined" : "actual tensor is undefined"};
  }
  if (actual.shape() != expected.shape()) {
    return {false, concat("shape ", shape_str(actual.shape()), " != expected ",
                          shape_str(expected.shape()))};
  }
  const std::vector<double> got = values_of(actual);
  const std::vector<double> want = values_of(expected);
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (close(got[i], want[i], rtol, atol)) continue;
    return {false,
            concat("first mismatch at ", index_str(static_cast<std::int64_t>(i), actual.shape()),
                   " of ", shape_str(actual.shape()), ": actual ", shortest(got[i]), ", expected ",
                   shortest(want[i]), " (|diff| ", shortest(std::abs(got[i] - want[i])), " > atol ",
                   shortest(atol), " + rtol ", shortest(rtol), " * |expected|)")};
  }
  return {};
}

}  // namespace ds::test
