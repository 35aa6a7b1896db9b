#include "nn/summary.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

#include "autograd/grad_mode.hpp"

namespace ds::nn {

namespace {

struct Recorder {
  std::map<const Module*, std::string> names;
  std::vector<LayerSummary> layers;
};

thread_local Recorder* active_recorder = nullptr;

std::int64_t bytes_of(const std::vector<NamedTensor>& tensors) {
  std::int64_t total = 0;
  for (const auto& t : tensors)
    total += t.tensor.numel() * static_cast<std::int64_t>(dtype_size(t.tensor.dtype()));
  return total;
}

}  // namespace

namespace detail {

bool summary_recording() { return active_recorder != nullptr; }

void summary_record(const Module& module, const Shape& input, const Shape& output) {
  if (!module.named_children().empty()) return;  // containers: their leaves are listed
  LayerSummary layer;
  const auto found = active_recorder->names.find(&module);
  layer.name = found != active_recorder->names.end() ? found->second : "?";
  layer.type = module.type_name();
  layer.output = output;
  for (const auto& p : module.named_parameters(false)) layer.parameters += p.tensor.numel();
  layer.bytes = bytes_of(module.named_parameters(false)) + bytes_of(module.named_buffers(false));
  layer.macs = module.macs(input, output);
  layer.stored_bytes = layer.bytes;
  if (layer.parameters == 0) layer.kind = "-";
  module.annotate(layer);
  active_recorder->layers.push_back(std::move(layer));
}

}  // namespace detail

ModelSummary summarize(Module& model, const Shape& input_shape) {
  Recorder recorder;
  for (const auto& m : model.named_modules()) recorder.names[m.module.get()] = m.name;
  const bool was_training = model.is_training();
  model.eval();
  {
    NoGradGuard no_grad;
    active_recorder = &recorder;
    try {
      model(Tensor::zeros(input_shape));
    } catch (...) {
      active_recorder = nullptr;
      model.train(was_training);
      throw;
    }
    active_recorder = nullptr;
  }
  model.train(was_training);
  ModelSummary summary;
  summary.layers = std::move(recorder.layers);
  for (const auto& p : model.named_parameters()) summary.parameters += p.tensor.numel();
  summary.bytes = bytes_of(model.state_dict());
  std::int64_t leaf_bytes = 0;
  for (const auto& l : summary.layers) {
    summary.macs += l.macs;
    summary.multiplies_replaced += l.multiplies_replaced;
    summary.stored_bytes += l.stored_bytes;
    leaf_bytes += l.bytes;
  }
  // State that no leaf forward reported (a module whose forward skipped a child) counts as is.
  summary.stored_bytes += std::max<std::int64_t>(0, summary.bytes - leaf_bytes);
  return summary;
}

std::string ModelSummary::table() const {
  std::ostringstream out;
  out << std::left << std::setw(28) << "layer" << std::setw(16) << "type" << std::setw(10)
      << "weights" << std::setw(6) << "bits" << std::setw(20) << "output" << std::right
      << std::setw(11) << "params" << std::setw(11) << "bytes" << std::setw(11) << "stored"
      << std::setw(14) << "MACs" << std::setw(14) << "mul->shift" << '\n';
  for (const auto& l : layers)
    out << std::left << std::setw(28) << l.name << std::setw(16) << l.type << std::setw(10)
        << l.kind << std::setw(6) << (l.parameters ? std::to_string(l.weight_bits) : "-")
        << std::setw(20) << shape_str(l.output) << std::right << std::setw(11) << l.parameters
        << std::setw(11) << l.bytes << std::setw(11) << l.stored_bytes << std::setw(14) << l.macs
        << std::setw(14) << l.multiplies_replaced << '\n';
  out << "total: " << parameters << " parameters, " << bytes << " bytes in memory, " << stored_bytes
      << " bytes stored; " << macs << " multiply-accumulates per forward pass, "
      << multiplies_replaced << " of them replaced by shifts\n";
  return out.str();
}

}  // namespace ds::nn
