#pragma once
// The learning-curve plot: an SVG with two panels, losses (train, test) and test accuracy
// (top-1, top-5) against the epoch, written without any plotting library.
#include <string>
#include <vector>

#include "examples/common/train_log.hpp"

namespace ds::trainer {

std::string learning_curve_svg(const std::vector<EpochRecord>& records, const std::string& title);

}  // namespace ds::trainer
