#pragma once
// A per-layer table of a model, made by running one forward pass on a zero input and
// recording what every leaf module produced (as torchsummary does).
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace ds::nn {

struct LayerSummary {
  std::string name;           // dotted path, as in the state dict
  std::string type;           // Conv2d, Linear, ...
  std::string kind = "FP32";  // how the weights are held; shift layers say which method
  Shape output;
  std::int64_t parameters = 0;
  std::int64_t bytes = 0;  // as stored in memory (parameters and buffers)
  std::int64_t macs = 0;   // multiply-accumulates of the forward pass
  int weight_bits = 32;
  std::int64_t multiplies_replaced = 0;  // by shifts and sign changes
  std::int64_t stored_bytes = 0;         // as deployed: packed shift weights, else as in memory
};

struct ModelSummary {
  std::vector<LayerSummary> layers;
  std::int64_t parameters = 0, bytes = 0, macs = 0;
  std::int64_t multiplies_replaced = 0, stored_bytes = 0;
  std::string table() const;  // an aligned text table with totals
};

// Runs `model` in eval mode on zeros of `input_shape` (then restores its mode).
ModelSummary summarize(Module& model, const Shape& input_shape);

namespace detail {
// Called by Module::operator() while a summary is being recorded.
bool summary_recording();
void summary_record(const Module& module, const Shape& input, const Shape& output);
}  // namespace detail

}  // namespace ds::nn
