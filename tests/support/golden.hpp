#pragma once
// Test helpers shared by every test program: the loader for the PyTorch golden fixtures
// (format in tests/golden/README.md) and an allclose comparison whose message says where the
// first mismatch is, so that a failing check points at one element instead of a whole tensor.
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace ds::test {

// A parsed fixture file. Tensors are built afresh on every lookup, so a test may mark them
// requires_grad or modify them without affecting later lookups.
class GoldenFile {
 public:
  // Throws ds::Error naming the file and line on a missing file or a malformed line.
  explicit GoldenFile(const std::string& path);

  // `key` is "case/name", e.g. "add_same/grad_a". Throws ds::Error naming the file and the key
  // when absent.
  Tensor get(const std::string& key) const;
  bool contains(const std::string& key) const;
  // Case names in file order, as declared by the `case` lines.
  const std::vector<std::string>& cases() const { return cases_; }
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    DType dtype;
    Shape shape;
    std::vector<double> values;
  };

  std::string path_;
  std::vector<std::string> cases_;
  std::map<std::string, Entry> entries_;
};

struct CloseResult {
  bool ok = true;
  std::string message;  // empty when ok; otherwise the first mismatch or the shape difference
  explicit operator bool() const { return ok; }
};

// Elementwise |actual - expected| <= atol + rtol * |expected|, as numpy.allclose. The dtypes
// may differ (an f32 result against an f64 reference); shapes must match exactly. NaNs match
// only NaNs, infinities only the same infinity. The message names the first mismatching
// multi-index with both values.
CloseResult allclose(const Tensor& actual, const Tensor& expected, double rtol = 1e-5,
                     double atol = 1e-8);

// The values of any dtype in logical (row-major) order, as doubles.
std::vector<double> values_of(const Tensor& tensor);

}  // namespace ds::test
