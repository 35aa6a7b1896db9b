#include "nn/module.hpp"

#include <algorithm>
#include <map>

#include "autograd/grad_mode.hpp"
#include "nn/summary.hpp"

namespace ds::nn {

Tensor Module::forward(const Tensor&) {
  fail(type_name_, ": this module has no single-input forward()");
}

Tensor Module::operator()(const Tensor& input) { return noted(input.shape(), forward(input)); }

Tensor Module::noted(const Shape& input, Tensor output) const {
  if (detail::summary_recording()) detail::summary_record(*this, input, output.shape());
  return output;
}

std::int64_t Module::macs(const Shape&, const Shape&) const { return 0; }

Tensor Module::register_parameter(const std::string& name, Tensor tensor) {
  if (tensor.defined() && is_floating(tensor.dtype()) && !tensor.requires_grad())
    tensor.requires_grad_(true);
  parameters_.push_back({name, tensor});
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  buffers_.push_back({name, tensor});
  return tensor;
}

void Module::add_child(const std::string& name, ModulePtr module) {
  if (!module) fail(type_name_, ": child '", name, "' is null");
  for (const auto& c : children_)
    if (c.name == name) fail(type_name_, ": a child named '", name, "' already exists");
  children_.push_back({name, std::move(module)});
}

void Module::collect(const std::string& prefix, bool parameters, bool buffers, bool recurse,
                     std::vector<NamedTensor>& out) const {
  if (parameters)
    for (const auto& p : parameters_)
      if (p.tensor.defined()) out.push_back({prefix + p.name, p.tensor});
  if (buffers)
    for (const auto& b : buffers_)
      if (b.tensor.defined()) out.push_back({prefix + b.name, b.tensor});
  if (!recurse) return;
  for (const auto& c : children_)
    c.module->collect(prefix + c.name + ".", parameters, buffers, true, out);
}

std::vector<NamedTensor> Module::named_parameters(bool recurse) const {
  std::vector<NamedTensor> out;
  collect("", true, false, recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters(recurse)) out.push_back(p.tensor);
  return out;
}

std::vector<NamedTensor> Module::named_buffers(bool recurse) const {
  std::vector<NamedTensor> out;
  collect("", false, true, recurse, out);
  return out;
}

std::vector<NamedModule> Module::named_children() const { return children_; }

void Module::collect_modules(const std::string& prefix, std::vector<NamedModule>& out) const {
  for (const auto& c : children_) {
    const std::string name = prefix.empty() ? c.name : prefix + "." + c.name;
    out.push_back({name, c.module});
    c.module->collect_modules(name, out);
  }
}

std::vector<NamedModule> Module::named_modules() const {
  // A module that no shared_ptr owns (on the stack, or still inside its constructor) is
  // listed through a non-owning alias: the caller holds it alive for the call anyway.
  auto self = std::const_pointer_cast<Module>(weak_from_this().lock());
  if (!self) self = ModulePtr(ModulePtr(), const_cast<Module*>(this));
  std::vector<NamedModule> out{{"", std::move(self)}};
  collect_modules("", out);
  return out;
}

ModulePtr Module::child(const std::string& name) const {
  for (const auto& c : children_)
    if (c.name == name) return c.module;
  fail(type_name_, ": no child named '", name, "'");
}

void Module::replace_child(const std::string& name, ModulePtr replacement) {
  if (!replacement) fail(type_name_, ": replacement for child '", name, "' is null");
  for (auto& c : children_)
    if (c.name == name) {
      c.module = std::move(replacement);
      return;
    }
  fail(type_name_, ": no child named '", name, "' to replace");
}

void Module::visit_children(
    const std::function<void(Module&, const std::string&, const ModulePtr&)>& visit) {
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const ModulePtr current = children_[i].module;
    visit(*this, children_[i].name, current);
    children_[i].module->visit_children(visit);
  }
}

void Module::train(bool training) {
  training_ = training;
  for (auto& c : children_) c.module->train(training);
}

void Module::zero_grad() {
  for (auto& p : named_parameters()) p.tensor.set_grad({});
}

std::vector<NamedTensor> Module::state_dict() const {
  std::vector<NamedTensor> out;
  collect("", true, true, true, out);
  return out;
}

void Module::load_state_dict(const std::vector<NamedTensor>& state, const std::string& source) {
  const auto own = state_dict();
  std::map<std::string, const Tensor*> incoming;
  for (const auto& entry : state) {
    if (!incoming.emplace(entry.name, &entry.tensor).second)
      fail(source, ": key '", entry.name, "' appears twice");
  }
  // Validate everything before touching anything, so a bad file leaves the model unchanged.
  for (const auto& entry : own) {
    const auto found = incoming.find(entry.name);
    if (found == incoming.end()) fail(source, ": missing key '", entry.name, "'");
    const Tensor& value = *found->second;
    if (value.shape() != entry.tensor.shape() || value.dtype() != entry.tensor.dtype())
      fail(source, ": key '", entry.name, "' has ", ds::describe(value), " but the model expects ",
           ds::describe(entry.tensor));
  }
  if (incoming.size() != own.size())
    for (const auto& entry : state) {
      const bool known = std::any_of(own.begin(), own.end(),
                                     [&](const NamedTensor& o) { return o.name == entry.name; });
      if (!known) fail(source, ": unexpected key '", entry.name, "'");
    }
  NoGradGuard no_grad;
  for (const auto& entry : own) entry.tensor.copy_(*incoming.at(entry.name));
}

void Module::to(Device device) {
  // Moves the data under each existing handle, so that layers' own references stay valid.
  const auto move = [device](const Tensor& t) {
    if (!t.defined() || t.device() == device) return;
    const Tensor moved = t.detach().contiguous().to(device);
    TensorImpl& impl = t.impl();
    impl.storage = moved.storage();
    impl.strides = moved.strides();
    impl.offset = moved.offset();
    impl.grad.reset();
  };
  for (const auto& p : parameters_) move(p.tensor);
  for (const auto& b : buffers_) move(b.tensor);
  for (auto& c : children_) c.module->to(device);
}

}  // namespace ds::nn
