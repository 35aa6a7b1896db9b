#pragma once
// Readers for the model-zoo fixtures written by golden/generate_models.py (formats described
// there and in golden/README.md), and the closed-form weights of the resnet18 check.
#include <cstdint>
#include <string>
#include <vector>

#include "nn/module.hpp"

namespace ds::test {

// One model of golden/model_keys.txt: its state dict as PyTorch lists it.
struct ReferenceModel {
  std::string dataset, arch;
  std::int64_t num_classes = 0, parameters = 0;
  std::vector<std::pair<std::string, Shape>> keys;
};

std::vector<ReferenceModel> read_reference_models(const std::string& path);

// <name>.txt index + <name>.f32 raw values: every tensor of a fixture, in file order.
std::vector<nn::NamedTensor> read_fixture(const std::string& directory, const std::string& name);
Tensor fixture_tensor(const std::vector<nn::NamedTensor>& fixture, const std::string& key);

// The deterministic value rule of generate_models.py's closed_form() for a tensor `name`.
Tensor closed_form(const std::string& name, const Shape& shape);

}  // namespace ds::test
