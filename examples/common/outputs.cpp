#include "examples/common/outputs.hpp"

#include <sstream>

#include "examples/common/train_log.hpp"
#include "nn/io/atomic_file.hpp"

namespace ds::trainer {

std::string shift_label(const TrainOptions& o, bool fully_shift) {
  std::string label = o.shift_depth > 0 ? (o.shift_type == "Q" ? "shift_q" : "shift_ps") : "shift";
  label += fully_shift ? std::string("_all") : "_" + std::to_string(o.shift_depth);
  if (o.shift_depth > 0) label += "_wb_" + std::to_string(o.weight_bits);
  if (!o.desc.empty()) label += "_" + o.desc;
  return label;
}

nn::WeightsMetadata model_config(const TrainOptions& o) {
  return {{"config.dataset", o.dataset},
          {"config.arch", o.arch},
          {"config.shift_depth", std::to_string(o.shift_depth)},
          {"config.shift_type", o.shift_type},
          {"config.weight_bits", std::to_string(o.weight_bits)},
          {"config.activation_bits",
           std::to_string(o.activation_bits.at(0)) + " " + std::to_string(o.activation_bits.at(1))},
          {"config.rounding", o.rounding}};
}

nn::WeightsMetadata run_config(const TrainOptions& o) {
  nn::WeightsMetadata config = model_config(o);
  config["config.optimizer"] = o.optimizer;
  config["config.lr_schedule"] = o.lr_schedule;
  config["config.lr_step_size"] = std::to_string(o.lr_step_size);
  config["config.batch_size"] = std::to_string(o.batch_size);
  config["config.seed"] = std::to_string(o.seed);
  config["config.train_limit"] = std::to_string(o.train_limit);
  config["config.freeze"] = o.freeze ? "true" : "false";
  config["config.flush_denormal"] = o.flush_denormal ? "true" : "false";
  return config;
}

void apply_model_config(const std::string& path, TrainOptions& o) {
  const nn::WeightsMetadata metadata = nn::read_safetensors(path).metadata;
  auto get = [&](const std::string& key) -> const std::string& {
    const auto found = metadata.find("config." + key);
    if (found == metadata.end()) {
      fail("--model: ", path, " was not written by a deepshift trainer (no config.", key,
           " entry); to start from plain weights use --weights");
    }
    return found->second;
  };
  if (get("dataset") != o.dataset) {
    fail("--model: ", path, " holds a ", get("dataset"), " model, not a ", o.dataset, " one");
  }
  const nn::WeightsMetadata from_command_line = model_config(o);
  const std::vector<std::pair<std::string, std::vector<std::string>>> options{
      {"arch", {"--arch", "--type"}},
      {"shift_depth", {"--shift-depth"}},
      {"shift_type", {"--shift-type"}},
      {"weight_bits", {"--weight-bits"}},
      {"activation_bits", {"--activation-bits"}},
      {"rounding", {"--rounding"}}};
  for (const auto& [key, names] : options) {
    const std::string& value = from_command_line.at("config." + key);
    for (const std::string& name : names) {
      if (o.given.contains(name) && value != get(key)) {
        fail("--model: ", path, " holds a model with ", key, " ", get(key), " but ", name, " ",
             value, " was given; the file sets it: drop ", name);
      }
    }
  }
  o.arch = get("arch");
  o.shift_depth = static_cast<int>(parse_double(get("shift_depth"), path + " shift_depth"));
  o.shift_type = get("shift_type");
  o.weight_bits = static_cast<int>(parse_double(get("weight_bits"), path + " weight_bits"));
  const std::string& bits = get("activation_bits");
  const auto space = bits.find(' ');
  if (space == std::string::npos) fail("--model: ", path, " has malformed activation_bits");
  o.activation_bits = {static_cast<int>(parse_double(bits.substr(0, space), path)),
                       static_cast<int>(parse_double(bits.substr(space + 1), path))};
  o.rounding = get("rounding");
}

void write_weights_log(const nn::Module& model, const std::string& path) {
  std::ostringstream out;
  out << "Model's state_dict:\n";
  for (const auto& [name, tensor] : model.state_dict()) {
    out << name << "\t" << shape_str(tensor.shape()) << "\n" << tensor << "\n\n";
  }
  nn::write_text_atomically(path, out.str());
}

}  // namespace ds::trainer
