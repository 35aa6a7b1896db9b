#pragma once
// The weights file: state dicts in the safetensors format (https://github.com/huggingface/
// safetensors), which PyTorch users read and write with one call, so pre-trained FP32 weights
// move between PyTorch and deepshift without pickles. Layout and our dtype mapping are in
// docs/weights-file.md.
#include <map>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace ds::nn {

using WeightsMetadata = std::map<std::string, std::string>;

struct WeightsFile {
  std::vector<NamedTensor> tensors;  // in the order of their data in the file
  WeightsMetadata metadata;          // the optional "__metadata__" string map
};

// Writes `tensors` (any device, any layout; names unique and not "__metadata__") to `path`.
// The file is written as `<path>.tmp` and renamed over `path`, so a failed save never leaves
// a truncated file behind and keeps what was at `path` before. i32 tensors named
// "*.num_batches_tracked" are stored as I64, the dtype PyTorch gives BatchNorm's counter.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                      const WeightsMetadata& metadata = {});

// Reads a whole file, validating it completely first: a truncated file, an absurd header,
// malformed JSON, an unknown dtype, sizes that disagree with shapes or offsets that leave gaps
// or overlap throw ds::Error naming the file (and the key at fault). I64 tensors become i32,
// and a value outside the i32 range is an error.
WeightsFile read_safetensors(const std::string& path);
std::vector<NamedTensor> load_safetensors(const std::string& path);

// A module's state dict to and from a file. Loading is all or nothing: a missing or unexpected
// key or a wrong dtype or shape throws ds::Error naming the file and key, and changes nothing.
void save_weights(const Module& module, const std::string& path,
                  const WeightsMetadata& metadata = {});
void load_weights(Module& module, const std::string& path);

}  // namespace ds::nn
