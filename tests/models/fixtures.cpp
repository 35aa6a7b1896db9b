#include "fixtures.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

namespace ds::test {

namespace {

Shape parse_shape(const std::string& text) {
  Shape shape;
  if (text == "-") return shape;
  std::istringstream in(text);
  for (std::string dim; std::getline(in, dim, 'x');) shape.push_back(std::stoll(dim));
  return shape;
}

std::ifstream open(const std::string& path, std::ios::openmode mode = std::ios::in) {
  std::ifstream in(path, mode);
  if (!in) fail("cannot open fixture ", path, " (run tests/models/golden/generate_models.py)");
  return in;
}

}  // namespace

std::vector<ReferenceModel> read_reference_models(const std::string& path) {
  std::ifstream in = open(path);
  std::vector<ReferenceModel> models;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string first, second;
    fields >> first >> second;
    if (first == "model") {
      ReferenceModel m;
      m.dataset = second;
      fields >> m.arch >> m.num_classes >> m.parameters;
      models.push_back(m);
    } else if (!models.empty()) {
      models.back().keys.emplace_back(first, parse_shape(second));
    } else {
      fail(path, ": key line before any model line: ", line);
    }
  }
  return models;
}

std::vector<nn::NamedTensor> read_fixture(const std::string& directory, const std::string& name) {
  std::ifstream index = open(directory + "/" + name + ".txt");
  std::ifstream raw = open(directory + "/" + name + ".f32", std::ios::binary);
  std::vector<nn::NamedTensor> tensors;
  std::string key, shape_text;
  std::int64_t offset = 0;
  while (index >> key >> shape_text >> offset) {
    const Shape shape = parse_shape(shape_text);
    std::vector<float> values(static_cast<std::size_t>(numel_of(shape)));
    raw.seekg(offset * static_cast<std::int64_t>(sizeof(float)));
    raw.read(reinterpret_cast<char*>(values.data()),
             static_cast<std::streamsize>(values.size() * sizeof(float)));
    if (!raw) fail(directory, "/", name, ".f32: truncated at tensor ", key);
    tensors.push_back({key, Tensor::from_vector(values, shape)});
  }
  return tensors;
}

Tensor fixture_tensor(const std::vector<nn::NamedTensor>& fixture, const std::string& key) {
  for (const auto& entry : fixture)
    if (entry.name == key) return entry.tensor;
  fail("fixture has no tensor '", key, "'");
}

Tensor closed_form(const std::string& name, const Shape& shape) {
  std::uint32_t hash = 0x811C9DC5u;  // FNV-1a
  for (const unsigned char byte : name) hash = (hash ^ byte) * 0x01000193u;
  const std::int64_t count = numel_of(shape);
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::vector<float> values(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    const std::uint32_t bits = hash + static_cast<std::uint32_t>(i) * 2654435761u;
    const double u = static_cast<double>(bits) / 4294967296.0;
    double v;
    if (name == "input")
      v = 2.0 * u - 1.0;
    else if (shape.size() > 1)
      v = (2.0 * u - 1.0) * std::sqrt(6.0 / static_cast<double>(count / shape[0]));
    else if (ends_with("running_var") || ends_with("weight"))
      v = 0.5 + u;
    else
      v = 0.2 * (u - 0.5);
    values[static_cast<std::size_t>(i)] = static_cast<float>(v);
  }
  return Tensor::from_vector(values, shape);
}

}  // namespace ds::test
