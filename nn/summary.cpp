#include "nn/summary.hpp"

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
  if (layer.parameters == 0) layer.kind = "-";
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
  for (const auto& l : summary.layers) summary.macs += l.macs;
  return summary;
}

std::string ModelSummary::table() const {
  std::ostringstream out;
  out << std::left << std::setw(28) << "layer" << std::setw(20) << "type" << std::setw(10)
      << "weights" << std::setw(22) << "output" << std::right << std::setw(12) << "params"
      << std::setw(12) << "bytes" << std::setw(16) << "MACs" << '\n';
  for (const auto& l : layers)
    out << std::left << std::setw(28) << l.name << std::setw(20) << l.type << std::setw(10)
        << l.kind << std::setw(22) << shape_str(l.output) << std::right << std::setw(12)
        << l.parameters << std::setw(12) << l.bytes << std::setw(16) << l.macs << '\n';
  out << "total: " << parameters << " parameters, " << bytes << " bytes, " << macs
      << " multiply-accumulates per forward pass\n";
  return out.str();
}

}  // namespace ds::nn
