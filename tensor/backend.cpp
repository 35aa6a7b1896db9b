#include "tensor/backend.hpp"

#include <array>

#include "tensor/error.hpp"

namespace ds {

Backend& cpu_backend();  // tensor/cpu/cpu_backend.cpp

namespace {
std::array<Backend*, 2>& registry() {
  static std::array<Backend*, 2> backends{&cpu_backend(), nullptr};
  return backends;
}
}  // namespace

Backend& backend_for(Device device) {
  Backend* backend = registry()[static_cast<std::size_t>(device.kind)];
  if (!backend)
    fail("device ", device.str(),
         " is not available: this build of deepshift has no CUDA back-end (configure with "
         "-Dcuda=enabled on a machine with nvcc)");
  return *backend;
}

void register_backend(DeviceKind kind, Backend* backend) {
  registry()[static_cast<std::size_t>(kind)] = backend;
}

bool has_backend(DeviceKind kind) { return registry()[static_cast<std::size_t>(kind)] != nullptr; }

const char* op_name(UnaryOp op) {
  static constexpr const char* names[] = {"neg",  "exp", "exp2", "log",   "log2",
                                          "sqrt", "abs", "sign", "floor", "round"};
  return names[static_cast<int>(op)];
}

const char* op_name(BinaryOp op) {
  static constexpr const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum",
                                          "eq",  "ne",  "lt",  "le",  "gt",  "ge"};
  return names[static_cast<int>(op)];
}

const char* op_name(ReduceOp op) {
  static constexpr const char* names[] = {"sum", "max", "min", "argmax", "argmin"};
  return names[static_cast<int>(op)];
}

}  // namespace ds
