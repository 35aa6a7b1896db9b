#pragma once
// Where a run writes, and the small text outputs: the original's folder naming
// <models-dir>/<dataset>/<arch>/<shift label>[_<desc>]/, the configuration recorded in weights
// files and checkpoints, command_args.txt and weights_log.txt.
#include <string>

#include "examples/common/options.hpp"
#include "nn/io/safetensors.hpp"
#include "nn/module.hpp"

namespace ds::trainer {

// "shift_0" for FP32, "shift_ps_3_wb_5" for PS with depth 3, "shift_q_all_wb_5" when no FP32
// Linear or Conv2d is left (the original's labels).
std::string shift_label(const TrainOptions& options, bool fully_shift);

// The settings that define the model: stored in every weights file the trainer writes, so that
// --model can rebuild the architecture ("config.dataset", "config.arch", ...).
nn::WeightsMetadata model_config(const TrainOptions& options);
// model_config plus what a resumed run must share to continue bit for bit.
nn::WeightsMetadata run_config(const TrainOptions& options);
// Sets the model settings of `options` from a weights file written by a trainer; ds::Error
// naming the file when it has none or belongs to another dataset, and naming the option when
// one given on the command line (options.given) contradicts the file.
void apply_model_config(const std::string& path, TrainOptions& options);

// The name and shape of every state-dict entry with its (summarised) values.
void write_weights_log(const nn::Module& model, const std::string& path);

}  // namespace ds::trainer
