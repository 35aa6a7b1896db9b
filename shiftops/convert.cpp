#include "shiftops/convert.hpp"

#include "tensor/ops.hpp"

namespace ds::shift {

namespace {

int convert_children(nn::Module& parent, int depth, const ConversionOptions& options) {
  int converted = 0;
  const auto children = parent.named_children();
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    const std::string& name = it->name;
    const nn::ModulePtr& child = it->module;
    if (!child->named_children().empty())
      converted += convert_children(*child, depth - converted, options);
    nn::ModulePtr replacement;
    if (auto* linear = dynamic_cast<nn::Linear*>(child.get());
        linear && (options.convert_all_linear || converted < depth)) {
      auto layer =
          std::make_shared<ShiftLinear>(linear->in_features(), linear->out_features(),
                                        linear->bias().defined(), options.type, options.shift);
      if (options.convert_weights) layer->load_float_weights(linear->weight(), linear->bias());
      replacement = layer;
      if (!options.convert_all_linear) ++converted;
    } else if (auto* conv = dynamic_cast<nn::Conv2d*>(child.get()); conv && converted < depth) {
      auto layer = std::make_shared<ShiftConv2d>(conv->options(), options.type, options.shift);
      if (options.convert_weights) layer->load_float_weights(conv->weight(), conv->bias());
      replacement = layer;
      ++converted;
    }
    if (replacement) {
      const auto params = child->parameters();
      if (!params.empty()) replacement->to(params.front().device());
      replacement->train(child->is_training());
      parent.replace_child(name, replacement);
    }
  }
  return converted;
}

}  // namespace

int convert_to_shift(nn::Module& model, int depth, const ConversionOptions& options) {
  options.shift.validate();
  if (depth < 0) fail("convert_to_shift: shift depth must be >= 0, got ", depth);
  return convert_children(model, depth, options);
}

std::vector<NamedShiftLayer> shift_layers(nn::Module& model) {
  std::vector<NamedShiftLayer> out;
  for (const auto& m : model.named_modules())
    if (auto* layer = dynamic_cast<ShiftLayer*>(m.module.get())) out.push_back({m.name, layer});
  return out;
}

void round_shift_weights(nn::Module& model) {
  for (const auto& entry : shift_layers(model)) entry.layer->round_weights_();
}

bool is_fully_shift(nn::Module& model) {
  for (const auto& m : model.named_modules())
    if (dynamic_cast<nn::Linear*>(m.module.get()) || dynamic_cast<nn::Conv2d*>(m.module.get()))
      return false;
  return true;
}

Tensor shift_l2_penalty(nn::Module& model, double weight_decay) {
  Tensor total;
  for (const auto& p : model.named_parameters()) {
    const std::string& name = p.name;
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".shift") != 0) continue;
    const Tensor term = sum(pow(4.0, p.tensor));  // (2^s)^2, saving only its output
    total = total.defined() ? total + term : term;
  }
  if (!total.defined()) return Tensor::scalar(0.0);
  return total * (weight_decay / 2.0);
}

}  // namespace ds::shift
