// Runs the code example of docs/deepshift.md, which the build extracts from the Markdown
// (extract_doc_example.py), and checks that it does what the page says: a fully converted
// DeepShift-PS model whose rounded weights are powers of two, and a summary that accounts for it.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "nn/summary.hpp"
#include "shiftops/quantize.hpp"
#include "support/golden.hpp"
#include "tensor/random.hpp"

// Defined by the extracted example.
ds::nn::ModelSummary deepshift_example(const ds::Tensor& images, const ds::Tensor& labels);

TEST_CASE("docs/deepshift.md: the API example runs as described", "[shiftops][docs]") {
  ds::manual_seed(3);
  const ds::Tensor images = ds::randn({4, 1, 28, 28});
  const ds::Tensor labels = ds::Tensor::from_vector(std::vector<std::int32_t>{1, 7, 3, 0}, {4});
  const ds::nn::ModelSummary summary = deepshift_example(images, labels);

  int shift_layers = 0;
  for (const auto& layer : summary.layers) {
    if (layer.parameters == 0) continue;
    INFO(layer.name);
    CHECK(layer.kind == "shift-PS");
    CHECK(layer.weight_bits == 5);
    CHECK(layer.multiplies_replaced == layer.macs);
    ++shift_layers;
  }
  CHECK(shift_layers == 4);  // conv1, conv2, fc1, fc2
  CHECK(summary.multiplies_replaced == summary.macs);
  CHECK(summary.macs > 0);
  // Stored packed, the 430500 weights take a byte each (b = 5) instead of the FP32 model's four.
  const std::int64_t fp32_bytes = (500 + 20 + 25000 + 50 + 400000 + 500 + 5000 + 10) * 4;
  CHECK(summary.stored_bytes >= 430500);
  CHECK(summary.stored_bytes * 3 < fp32_bytes);
}
