// The packed weights file: the safetensors weights file with each shift layer's weight
// parameters replaced by its codes (docs/kernels.md, "Packed weights file").
#include <cstdio>
#include <map>
#include <set>

#include "autograd/grad_mode.hpp"
#include "nn/io/safetensors.hpp"
#include "shiftops/convert.hpp"
#include "shiftops/packed.hpp"

namespace ds::shift {

namespace {

constexpr const char* kFormatKey = "deepshift.packed_format";

std::string prefix_of(const std::string& layer) { return layer.empty() ? "" : layer + "."; }
std::string layer_key(const std::string& layer) { return "deepshift.packed." + layer; }

// The parameters a layer's codes stand for.
std::vector<std::string> weight_names(const ShiftLayer& layer) {
  if (layer.shift_type() == ShiftType::Q) return {"weight"};
  return {"shift", "sign"};
}

Tensor take(std::map<std::string, Tensor>& tensors, const std::string& name,
            const std::string& path) {
  const auto found = tensors.find(name);
  if (found == tensors.end()) fail(path, ": packed weights file lacks '", name, "'");
  Tensor tensor = found->second;
  tensors.erase(found);
  return tensor;
}

// The layer's parameters from the codes, after checking every exponent against its range.
std::vector<nn::NamedTensor> unpack_layer(const ShiftLayer& layer, const PackedWeights& packed,
                                          const std::string& prefix, const std::string& path) {
  const ShiftRange range = layer.range();
  const Shape shape =
      layer.shift_type() == ShiftType::Q ? layer.weight().shape() : layer.shift().shape();
  const std::size_t count = static_cast<std::size_t>(packed.rows * packed.cols);
  std::vector<float> shift(count), sign(count), weight(count);
  for (std::int64_t r = 0; r < packed.rows; ++r)
    for (std::int64_t c = 0; c < packed.cols; ++c) {
      const std::size_t i = static_cast<std::size_t>(r * packed.cols + c);
      const int s = packed.sign(r, c);
      const int k = s == 0 ? -range.min_shift : packed.k(r, c);
      if (k < -range.max_shift || k > -range.min_shift)
        fail(path, ": '", prefix, "codes' holds exponent -", k, " outside the layer's range [",
             range.min_shift, ", ", range.max_shift, "]");
      shift[i] = static_cast<float>(-k);
      sign[i] = static_cast<float>(s);
      weight[i] = static_cast<float>(s * std::ldexp(1.0, -k));
    }
  if (layer.shift_type() == ShiftType::Q)
    return {{prefix + "weight", Tensor::from_vector(weight, shape)}};
  return {{prefix + "shift", Tensor::from_vector(shift, shape)},
          {prefix + "sign", Tensor::from_vector(sign, shape)}};
}

}  // namespace

void save_packed(nn::Module& model, const std::string& path) {
  NoGradGuard no_grad;
  std::map<std::string, Tensor> replacement;  // first replaced name -> what takes its place
  std::set<std::string> dropped;
  nn::WeightsMetadata metadata{{kFormatKey, std::to_string(kPackedFormatVersion)}};
  for (const NamedShiftLayer& named : shift_layers(model)) {
    const PackedWeights packed = pack(*named.layer);
    const std::string prefix = prefix_of(named.name);
    const std::vector<std::string> names = weight_names(*named.layer);
    replacement[prefix + names.front()] =
        Tensor::from_vector(packed.codes, {packed.rows, packed.row_bytes()});
    for (std::size_t i = 1; i < names.size(); ++i) dropped.insert(prefix + names[i]);
    if (named.layer->bias().defined())
      replacement[prefix + "bias"] = named.layer->fixed_bias().detach();
    metadata[layer_key(named.name)] =
        "code_bits=" + std::to_string(packed.code_bits) + ",max_k=" + std::to_string(packed.max_k);
  }
  std::vector<nn::NamedTensor> tensors;
  for (const nn::NamedTensor& entry : model.state_dict()) {
    if (dropped.count(entry.name)) continue;
    const auto found = replacement.find(entry.name);
    if (found == replacement.end()) {
      tensors.push_back(entry);
    } else if (entry.name.ends_with("bias")) {
      tensors.push_back({entry.name, found->second});
    } else {
      const std::string prefix = entry.name.substr(0, entry.name.rfind('.') + 1);
      tensors.push_back({prefix + "codes", found->second});
    }
  }
  nn::save_safetensors(path, tensors, metadata);
}

void load_packed(nn::Module& model, const std::string& path) {
  nn::WeightsFile file = nn::read_safetensors(path);
  const auto version = file.metadata.find(kFormatKey);
  if (version == file.metadata.end())
    fail(path, ": not a packed weights file (no '", kFormatKey, "' metadata)");
  if (version->second != std::to_string(kPackedFormatVersion))
    fail(path, ": packed weights format version ", version->second, "; this build reads version ",
         kPackedFormatVersion);
  std::map<std::string, Tensor> tensors;
  for (nn::NamedTensor& entry : file.tensors) tensors[entry.name] = entry.tensor;
  std::vector<nn::NamedTensor> state;
  for (const NamedShiftLayer& named : shift_layers(model)) {
    const ShiftLayer& layer = *named.layer;
    const std::string prefix = prefix_of(named.name);
    const auto info = file.metadata.find(layer_key(named.name));
    PackedWeights packed;
    if (info == file.metadata.end() ||
        std::sscanf(info->second.c_str(), "code_bits=%d,max_k=%d", &packed.code_bits,
                    &packed.max_k) != 2 ||
        (packed.code_bits != 4 && packed.code_bits != 8) || packed.max_k < 0 || packed.max_k > 127)
      fail(path, ": missing or malformed metadata '", layer_key(named.name), "'");
    packed.rows =
        layer.shift_type() == ShiftType::Q ? layer.weight().size(0) : layer.shift().size(0);
    packed.cols = layer.weight_count() / packed.rows;
    const Tensor codes = take(tensors, prefix + "codes", path);
    if (codes.dtype() != DType::u8 || codes.shape() != Shape{packed.rows, packed.row_bytes()})
      fail(path, ": '", prefix, "codes' is ", describe(codes), "; the layer needs u8[", packed.rows,
           ", ", packed.row_bytes(), "]");
    packed.codes = codes.to_vector<std::uint8_t>();
    for (nn::NamedTensor& entry : unpack_layer(layer, packed, prefix, path))
      state.push_back(std::move(entry));
  }
  for (auto& [name, tensor] : tensors) state.push_back({name, tensor});
  model.load_state_dict(state, path);
}

}  // namespace ds::shift
