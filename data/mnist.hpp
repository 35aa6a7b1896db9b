#pragma once
// MNIST-format IDX files, raw or gzip-compressed: MNIST, Fashion-MNIST (Debian's
// dataset-fashion-mnist installs it in /usr/share/datasets/fashion-mnist) and their kin.
#include <string>
#include <string_view>

#include "data/dataset.hpp"

namespace ds::data {

// Parses an IDX array of unsigned bytes (element type 0x08), gzip-compressed or not (detected
// from the content). Returns a u8 tensor with the file's dimensions. `name` names the source in
// messages. Throws on a wrong magic number, another element type, a truncated array or bytes
// left over after it.
Tensor parse_idx(std::string_view bytes, const std::string& name);
Tensor read_idx(const std::string& path);

// Reads <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte, each raw or with a .gz suffix.
// Images come out u8 [N, 1, rows, cols], labels in [0, 10). Throws when the directory or a
// file is missing, on any fault of parse_idx, when the image and label counts differ and when
// a label is 10 or more.
TensorDataset load_mnist(const std::string& dir, Split split);

}  // namespace ds::data
