#pragma once
// CIFAR-10 and CIFAR-100, binary version (the files of cifar-10-binary.tar.gz and
// cifar-100-binary.tar.gz from the CIFAR site). Each record is its label byte(s) followed by a
// 32x32 RGB image stored as three 1024-byte planes, which is already the [3, 32, 32] layout.
#include <string>
#include <string_view>

#include "data/dataset.hpp"

namespace ds::data {

enum class CifarFormat {
  cifar10,   // 1 label byte in [0, 10)
  cifar100,  // a coarse label byte in [0, 20), then a fine label byte in [0, 100)
};

enum class Cifar100Label { fine, coarse };

struct CifarRecords {
  Tensor images;  // u8 [N, 3, 32, 32]
  Tensor labels;  // i32 [N, 1] (CIFAR-10) or [N, 2] (CIFAR-100: coarse, fine)
};

// Parses the records of one file. Throws, naming `name`, on an empty file, a length that is not
// a whole number of records (a truncated file) and a label out of range.
CifarRecords parse_cifar(std::string_view bytes, const std::string& name, CifarFormat format);

// `root` is the folder holding data_batch_1.bin ... data_batch_5.bin and test_batch.bin, or a
// folder containing that folder as cifar-10-batches-bin/ (how the archive unpacks).
TensorDataset load_cifar10(const std::string& root, Split split);

// `root` is the folder holding train.bin and test.bin, or a folder containing it as
// cifar-100-binary/.
TensorDataset load_cifar100(const std::string& root, Split split,
                            Cifar100Label label = Cifar100Label::fine);

}  // namespace ds::data
