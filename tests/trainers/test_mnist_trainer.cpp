// The mnist trainer as a user runs it: a short run resumed from its checkpoint ends bit for bit
// where an uninterrupted run ends, -e on the saved model prints exactly the final accuracy, the
// output folder holds what the original writes, and bad options or inputs fail clearly.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/fixtures.hpp"
#include "nn/io/safetensors.hpp"
#include "nn/models/zoo.hpp"
#include "run_program.hpp"
#include "tensor/ops.hpp"

namespace {

using ds::test::line_after;
using ds::test::run_program;
namespace fs = std::filesystem;

const std::string kMnist = DS_MNIST_PROGRAM;

// A learnable MNIST-format set: class c lights a 6x6 block at a place of its own, over a
// deterministic speckle.
void write_split(const ds::test::TempDir& dir, const std::string& prefix, std::uint32_t count) {
  std::string images = ds::test::idx_header({count, 28, 28});
  std::string labels = ds::test::idx_header({count});
  for (std::uint32_t i = 0; i < count; ++i) {
    const int label = static_cast<int>((i * 7 + i / 10) % 10);
    labels += static_cast<char>(label);
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        const bool lit = y / 7 == label / 4 + (label % 4 == 3) && x / 7 == label % 4;
        images += static_cast<char>(lit ? 200 + (i + x) % 50 : (i * 31 + y * 7 + x * 3) % 40);
      }
    }
  }
  ds::test::write_bytes(dir.file("data/" + prefix + "-images-idx3-ubyte"), images);
  ds::test::write_bytes(dir.file("data/" + prefix + "-labels-idx1-ubyte"), labels);
}

struct Workspace {
  ds::test::TempDir dir;
  Workspace() {
    write_split(dir, "train", 320);
    write_split(dir, "t10k", 200);
  }
  std::string data() const { return (dir.path() / "data").string(); }
  std::string models(const std::string& name) const { return (dir.path() / name).string(); }
};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Everything of train_log.csv but the seconds column.
std::string log_without_seconds(const fs::path& path) {
  std::istringstream in(read_text(path));
  std::string kept;
  for (std::string line; std::getline(in, line);) kept += line.substr(0, line.rfind(',')) + '\n';
  return kept;
}

void require_same_tensors(const std::string& a, const std::string& b) {
  const auto left = ds::nn::load_safetensors(a);
  const auto right = ds::nn::load_safetensors(b);
  REQUIRE(left.size() == right.size());
  for (std::size_t i = 0; i < left.size(); ++i) {
    INFO(left[i].name);
    REQUIRE(left[i].name == right[i].name);
    REQUIRE(left[i].tensor.to_vector<float>() == right[i].tensor.to_vector<float>());
  }
}

const std::string kLabel = "models/mnist/simple_linear/shift_ps_all_wb_5";

std::vector<std::string> ps_run(const Workspace& ws, const std::string& models) {
  // Linear has dropout (generator state), PS with radam and the shift L2 term, StepLR.
  return {"--data-dir",
          ws.data(),
          "--models-dir",
          models,
          "-s",
          "1000",
          "-st",
          "PS",
          "-opt",
          "radam",
          "--lr",
          "0.01",
          "--wd",
          "1e-4",
          "--lr-schedule",
          "step",
          "--lr-step-size",
          "1",
          "-b",
          "32",
          "--test-batch-size",
          "64",
          "-j",
          "0",
          "--print-weights",
          "true"};
}

}  // namespace

TEST_CASE("a resumed run ends bit for bit where an uninterrupted one ends", "[trainers]") {
  Workspace ws;
  const std::string whole = ws.models("whole") + "/models", split = ws.models("split") + "/models";
  const auto full = run_program(kMnist, with(ps_run(ws, whole), {"--epochs", "3"}));
  INFO(full.output);
  REQUIRE(full.status == 0);
  const auto first = run_program(kMnist, with(ps_run(ws, split), {"--epochs", "1"}));
  INFO(first.output);
  REQUIRE(first.status == 0);
  const fs::path folder = fs::path(split) / "mnist/simple_linear/shift_ps_all_wb_5";
  const auto resumed = run_program(
      kMnist, with(ps_run(ws, split),
                   {"--epochs", "3", "--resume", (folder / "checkpoint.safetensors").string()}));
  INFO(resumed.output);
  REQUIRE(resumed.status == 0);
  CHECK(resumed.output.find("Resumed from") != std::string::npos);

  const fs::path reference = fs::path(whole) / "mnist/simple_linear/shift_ps_all_wb_5";
  require_same_tensors((reference / "weights.safetensors").string(),
                       (folder / "weights.safetensors").string());
  CHECK(log_without_seconds(reference / "train_log.csv") ==
        log_without_seconds(folder / "train_log.csv"));
  CHECK(line_after(full.output, "Final test set (rounded weights): ") ==
        line_after(resumed.output, "Final test set (rounded weights): "));

  // Flushing subnormal floats or not changes the trajectory: a resume must keep the mode.
  const auto other_mode =
      run_program(kMnist, with(ps_run(ws, split), {"--epochs", "4", "--resume",
                                                   (folder / "checkpoint.safetensors").string(),
                                                   "--flush-denormal", "false"}));
  INFO(other_mode.output);
  CHECK(other_mode.status != 0);
  CHECK(other_mode.output.find("flush_denormal = true but this run has false") !=
        std::string::npos);

  // A checkpoint from before the setting was recorded ran without flushing: it resumes with
  // --flush-denormal false only.
  const std::string checkpoint = (folder / "checkpoint.safetensors").string();
  ds::nn::WeightsFile older = ds::nn::read_safetensors(checkpoint);
  REQUIRE(older.metadata.erase("config.flush_denormal") == 1);
  ds::nn::save_safetensors(checkpoint, older.tensors, older.metadata);
  const auto flushing =
      run_program(kMnist, with(ps_run(ws, split), {"--epochs", "4", "--resume", checkpoint}));
  INFO(flushing.output);
  CHECK(flushing.status != 0);
  CHECK(flushing.output.find("flush_denormal = false but this run has true") != std::string::npos);
  const auto not_flushing = run_program(
      kMnist, with(ps_run(ws, split),
                   {"--epochs", "4", "--resume", checkpoint, "--flush-denormal", "false"}));
  INFO(not_flushing.output);
  CHECK(not_flushing.status == 0);
}

TEST_CASE("-e on the saved model prints exactly the final accuracy", "[trainers]") {
  Workspace ws;
  const std::string models = ws.models("out");
  const auto trained =
      run_program(kMnist, {"--data-dir", ws.data(), "--models-dir", models, "--type", "conv", "-s",
                           "1000", "-st", "Q", "-r", "stochastic", "--epochs", "1", "-j", "2",
                           "--print-weights", "false"});
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const fs::path folder = fs::path(models) / "mnist/simple_conv/shift_q_all_wb_5";
  const auto evaluated =
      run_program(kMnist, {"--data-dir", ws.data(), "--models-dir", models, "-e", "--model",
                           (folder / "weights.safetensors").string()});
  INFO(evaluated.output);
  REQUIRE(evaluated.status == 0);
  const std::string final_line = line_after(trained.output, "Final test set (rounded weights): ");
  REQUIRE_FALSE(final_line.empty());
  CHECK(line_after(evaluated.output, "Test set: ") == final_line);
  CHECK(fs::exists(folder / "test_log.csv"));
  // The training run's record stays; the evaluation's goes beside it.
  CHECK(read_text(folder / "command_args.txt").find("--epochs 1") != std::string::npos);
  CHECK(read_text(folder / "eval_command_args.txt").find("-e --model") != std::string::npos);
  CHECK(fs::exists(folder / "eval_model_summary.txt"));

  // Options the file sets may be repeated but not contradicted.
  const std::string model = (folder / "weights.safetensors").string();
  const auto agreeing = run_program(kMnist, {"--data-dir", ws.data(), "--models-dir", models, "-e",
                                             "--model", model, "--type", "conv", "-st", "Q"});
  INFO(agreeing.output);
  CHECK(agreeing.status == 0);
  const std::vector<std::pair<std::vector<std::string>, std::string>> contradictions{
      {{"-wb", "4"}, "weight_bits 5 but --weight-bits 4 was given"},
      {{"-s", "2"}, "shift_depth 1000 but --shift-depth 2 was given"},
      {{"-r", "deterministic"}, "rounding stochastic but --rounding deterministic was given"},
  };
  for (const auto& [option, expected] : contradictions) {
    const auto contradicting = run_program(
        kMnist,
        with({"--data-dir", ws.data(), "--models-dir", models, "-e", "--model", model}, option));
    INFO(contradicting.output);
    CHECK(contradicting.status != 0);
    CHECK(contradicting.output.find(expected) != std::string::npos);
  }
}

TEST_CASE("--use-kernel evaluates the saved PS model with the integer kernel", "[trainers]") {
  Workspace ws;
  const std::string models = ws.models("out");
  const auto trained = run_program(kMnist, with(ps_run(ws, models), {"--epochs", "1"}));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const fs::path folder = fs::path(models) / "mnist/simple_linear/shift_ps_all_wb_5";
  const auto kernel =
      run_program(kMnist, {"--data-dir", ws.data(), "--models-dir", models, "-e", "--model",
                           (folder / "weights.safetensors").string(), "--use-kernel", "true"});
  INFO(kernel.output);
  REQUIRE(kernel.status == 0);
  // The kernel computes the float path's sums exactly: the same predictions.
  const auto correct = [](const std::string& line) { return line.substr(line.find('(')); };
  CHECK(correct(line_after(kernel.output, "Test set (shift kernel): ")) ==
        correct(line_after(trained.output, "Final test set (rounded weights): ")));
  CHECK(kernel.output.find("Model size: FP32 ") != std::string::npos);
  CHECK(fs::is_regular_file(folder / "weights_packed.safetensors"));
  CHECK(fs::file_size(folder / "weights_packed.safetensors") <
        fs::file_size(folder / "weights.safetensors") / 3);
}

TEST_CASE("--use-kernel trains through the integer kernel with the float path's loss",
          "[trainers]") {
  Workspace ws;
  const std::string float_models = ws.models("float"), kernel_models = ws.models("kernel");
  const auto with_float = run_program(kMnist, with(ps_run(ws, float_models), {"--epochs", "1"}));
  const auto with_kernel = run_program(
      kMnist, with(ps_run(ws, kernel_models), {"--epochs", "1", "--use-kernel", "true"}));
  INFO(with_kernel.output);
  REQUIRE(with_float.status == 0);
  REQUIRE(with_kernel.status == 0);
  CHECK(with_kernel.output.find("integer shift kernels") != std::string::npos);
  // The kernel's forward equals the float path's up to float rounding, and the backward is the
  // float path's: one epoch ends on the same training loss to a few digits.
  const auto train_loss = [](const std::string& models) {
    std::istringstream log(
        read_text(fs::path(models) / "mnist/simple_linear/shift_ps_all_wb_5" / "train_log.csv"));
    std::string header, row;
    std::getline(log, header);
    std::getline(log, row);
    return std::stod(row.substr(row.find(',') + 1));
  };
  CHECK(train_loss(kernel_models) == Approx(train_loss(float_models)).epsilon(1e-3));
}

TEST_CASE("the output folder holds the original's files", "[trainers]") {
  Workspace ws;
  const std::string models = ws.models("out");
  const auto run = run_program(kMnist, with(ps_run(ws, models), {"--epochs", "2", "--desc", "x"}));
  INFO(run.output);
  REQUIRE(run.status == 0);
  const fs::path folder = fs::path(models) / "mnist/simple_linear/shift_ps_all_wb_5_x";
  for (const char* file : {"command_args.txt", "model_summary.txt", "checkpoint.safetensors",
                           "model_best.safetensors", "weights.safetensors", "weights_log.txt"}) {
    INFO(file);
    CHECK(fs::is_regular_file(folder / file));
  }
  CHECK(read_text(folder / "command_args.txt").find("--desc x") != std::string::npos);
  const std::string log = read_text(folder / "train_log.csv");
  CHECK(log.rfind("epoch,train_loss,test_loss,top1,top5,seconds\n1,", 0) == 0);
  CHECK(log.find("\n2,") != std::string::npos);
  const std::string svg = read_text(folder / "learning_curve.svg");
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("<polyline") != std::string::npos);
  CHECK(read_text(folder / "model_summary.txt").find("fc3") != std::string::npos);
  CHECK_FALSE(fs::exists(folder / "checkpoint.safetensors.tmp"));

  // The same command again would replace this run's models: refused, the files untouched,
  // unless --overwrite.
  const std::string checkpoint = read_text(folder / "checkpoint.safetensors");
  const std::string command = read_text(folder / "command_args.txt");
  const auto again =
      run_program(kMnist, with(ps_run(ws, models), {"--epochs", "1", "--desc", "x"}));
  INFO(again.output);
  CHECK(again.status != 0);
  CHECK(again.output.find("holds an earlier run") != std::string::npos);
  CHECK(again.output.find("--overwrite true") != std::string::npos);
  CHECK(read_text(folder / "checkpoint.safetensors") == checkpoint);
  CHECK(read_text(folder / "command_args.txt") == command);
  const auto replaced = run_program(
      kMnist, with(ps_run(ws, models), {"--epochs", "1", "--desc", "x", "--overwrite", "true"}));
  INFO(replaced.output);
  CHECK(replaced.status == 0);
  CHECK(read_text(folder / "train_log.csv").find("\n2,") == std::string::npos);
}

TEST_CASE("FP32 baselines go to shift_0 and the short forms set their options", "[trainers]") {
  Workspace ws;
  const std::string models = ws.models("out");
  const auto fp32 = run_program(
      kMnist, {"--data-dir", ws.data(), "--models-dir", models, "--epochs", "1", "--train-limit",
               "64", "--test-limit", "50", "--print-weights", "false"});
  INFO(fp32.output);
  REQUIRE(fp32.status == 0);
  CHECK(line_after(fp32.output, "Final test set (rounded weights): ").find("/50)") !=
        std::string::npos);
  const fs::path baseline = fs::path(models) / "mnist/simple_linear/shift_0";
  REQUIRE(fs::exists(baseline / "weights.safetensors"));

  // From the FP32 baseline (--pretrained) with the original's multi-letter short forms.
  const auto q = run_program(kMnist, {"--data-dir",
                                      ws.data(),
                                      "--models-dir",
                                      models,
                                      "--pretrained",
                                      "True",
                                      "-s",
                                      "2",
                                      "-st",
                                      "Q",
                                      "-wb",
                                      "4",
                                      "-ab",
                                      "4",
                                      "12",
                                      "-opt",
                                      "adam",
                                      "--epochs",
                                      "1",
                                      "--train-limit",
                                      "64",
                                      "--print-weights",
                                      "false"});
  INFO(q.output);
  REQUIRE(q.status == 0);
  CHECK(q.output.find("Converted 2 layer(s) to DeepShift-Q") != std::string::npos);
  CHECK(fs::exists(fs::path(models) / "mnist/simple_linear/shift_q_2_wb_4/weights.safetensors"));
}

TEST_CASE("bad options and inputs exit non-zero with a message naming the culprit", "[trainers]") {
  Workspace ws;
  const std::string models = ws.models("out");
  const std::vector<std::string> base{"--data-dir", ws.data(),  "--models-dir",
                                      models,       "--epochs", "1"};
  ds::test::write_bytes(ws.dir.file("not-a-checkpoint.safetensors"), "hello");
  ds::nn::save_safetensors(ws.dir.file("plain.safetensors"), {});

  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--bogus"}, "--bogus"},
      {{"-ab", "1", "16"}, "activation-bits"},
      {{"-wb", "9"}, "weight-bits"},
      {{"-opt", "nadam"}, "optimizer"},
      {{"--type", "mlp"}, "--type"},
      {{"--use-kernel", "true"}, "--use-kernel: the model has no shift layers"},
      {{"--freeze", "true"}, "--freeze"},
      {{"--resume", ws.dir.file("not-a-checkpoint.safetensors")}, "not-a-checkpoint"},
      {{"--resume", ws.dir.file("plain.safetensors")}, "not a checkpoint"},
      {{"--weights", ws.dir.file("missing.safetensors")}, "missing.safetensors"},
      {{"--model", ws.dir.file("plain.safetensors")}, "--model"},
      {{"-e"}, "-e/--evaluate needs a trained model"},
      {{"-b", "0"}, "--batch-size: must be a finite number greater than 0, got 0"},
      {{"--lr", "inf"}, "--lr: must be a finite number greater than 0, got inf"},
      // A run that diverges stops rather than report accuracy and save NaN weights.
      {{"--lr", "1e30"}, "the training loss is"},
  };
  for (const auto& [args, expected] : cases) {
    const auto run = run_program(kMnist, with(base, args));
    INFO(run.output);
    CHECK(run.status != 0);
    CHECK(run.output.find(expected) != std::string::npos);
  }
  const auto missing = run_program(
      kMnist, {"--data-dir", ws.dir.file("nowhere"), "--models-dir", models, "--epochs", "1"});
  CHECK(missing.status != 0);
  CHECK(missing.output.find("nowhere") != std::string::npos);
  // The diverged run saved no weights.
  for (const auto& entry : fs::recursive_directory_iterator(ws.dir.path()))
    CHECK((entry.path().extension() != ".safetensors" ||
           entry.path().parent_path() == ws.dir.path()));
  // Weights with NaN: the test loss stops the evaluation, which reports no accuracy.
  const auto model = ds::nn::models::create("mnist", "linear");
  for (auto [name, tensor] : model->named_parameters()) tensor.detach().fill_(NAN);
  ds::nn::save_weights(*model, ws.dir.file("nan.safetensors"));
  const auto nan_weights = run_program(kMnist, {"--data-dir", ws.data(), "--models-dir", models,
                                                "-e", "--weights", ws.dir.file("nan.safetensors")});
  INFO(nan_weights.output);
  CHECK(nan_weights.status != 0);
  CHECK(nan_weights.output.find("the test loss is nan") != std::string::npos);
  CHECK(nan_weights.output.find("top-1") == std::string::npos);
  const auto no_folder =
      run_program(kMnist, {"--data-dir", ws.data(), "--models-dir", "", "--epochs", "1"});
  CHECK(no_folder.status != 0);
  CHECK(no_folder.output.find("--models-dir is empty") != std::string::npos);
}

TEST_CASE("data the model cannot use fails before the output folder is written", "[trainers]") {
  Workspace ws;
  // An empty training split, then images of 784 pixels but 14x56.
  ds::test::write_bytes(ws.dir.file("empty/train-images-idx3-ubyte"),
                        ds::test::idx_header({0, 28, 28}));
  ds::test::write_bytes(ws.dir.file("empty/train-labels-idx1-ubyte"), ds::test::idx_header({0}));
  fs::copy(ws.dir.file("data/t10k-images-idx3-ubyte"), ws.dir.file("empty/t10k-images-idx3-ubyte"));
  fs::copy(ws.dir.file("data/t10k-labels-idx1-ubyte"), ws.dir.file("empty/t10k-labels-idx1-ubyte"));
  ds::test::write_bytes(ws.dir.file("wide/train-images-idx3-ubyte"),
                        ds::test::idx_header({1, 14, 56}) + std::string(784, '\x10'));
  ds::test::write_bytes(ws.dir.file("wide/train-labels-idx1-ubyte"),
                        ds::test::idx_header({1}) + std::string(1, '\x03'));
  fs::copy(ws.dir.file("wide/train-images-idx3-ubyte"), ws.dir.file("wide/t10k-images-idx3-ubyte"));
  fs::copy(ws.dir.file("wide/train-labels-idx1-ubyte"), ws.dir.file("wide/t10k-labels-idx1-ubyte"));
  const std::string models = ws.models("out");
  const std::vector<std::pair<std::string, std::string>> cases{
      {"empty", "the training set holds no samples"},
      {"wide", "first sample (" + ws.dir.file("wide/t10k-images-idx3-ubyte") +
                   ", sample 0) is [1, 14, 56]; the model takes [1, 28, 28]"},
  };
  for (const auto& [data, expected] : cases) {
    const auto run = run_program(
        kMnist, {"--data-dir", ws.dir.file(data), "--models-dir", models, "--epochs", "1"});
    INFO(run.output);
    CHECK(run.status != 0);
    CHECK(run.output.find(expected) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(models));
}
