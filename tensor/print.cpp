// Readable printing in PyTorch's style; tensors with more than 1000 elements show the first
// and last three entries of each dim.
#include <iomanip>

#include "tensor/tensor.hpp"

namespace ds {

namespace {

constexpr std::int64_t kSummariseAbove = 1000;
constexpr std::int64_t kEdgeItems = 3;

void print_dim(std::ostream& out, const std::vector<double>& values, const Shape& shape,
               std::size_t dim, std::int64_t offset, bool summarise, bool floating, int indent) {
  if (dim == shape.size()) {
    const double v = values[static_cast<std::size_t>(offset)];
    if (floating)
      out << std::setprecision(4) << std::fixed << v << std::defaultfloat;
    else
      out << static_cast<long long>(v);
    return;
  }
  std::int64_t stride = 1;
  for (std::size_t d = dim + 1; d < shape.size(); ++d) stride *= shape[d];
  out << '[';
  const std::int64_t n = shape[dim];
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * kEdgeItems && i == kEdgeItems) {
      out << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - kEdgeItems;
    }
    print_dim(out, values, shape, dim + 1, offset + i * stride, summarise, floating, indent + 1);
    if (i + 1 < n) out << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  out << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) {
  if (!tensor.defined()) return out << "tensor(undefined)";
  const Tensor host = tensor.detach().to(DType::f64).to(Device::cpu());
  const auto values = host.to_vector<double>();
  out << "tensor(";
  print_dim(out, values, tensor.shape(), 0, 0, tensor.numel() > kSummariseAbove,
            is_floating(tensor.dtype()), 7);
  out << ", dtype=" << dtype_name(tensor.dtype());
  if (tensor.numel() > kSummariseAbove) out << ", shape=" << shape_str(tensor.shape());
  if (!tensor.device().is_cpu()) out << ", device=" << tensor.device().str();
  if (tensor.requires_grad()) out << ", requires_grad";
  return out << ')';
}

}  // namespace ds
