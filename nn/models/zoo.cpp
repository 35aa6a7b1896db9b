#include "nn/models/zoo.hpp"

#include <functional>
#include <utility>

namespace ds::nn::models {

namespace {

using Builder = std::function<ModulePtr(std::int64_t num_classes)>;
using Table = std::vector<std::pair<std::string, Builder>>;

const Table& mnist_table() {
  static const Table table{{"linear", linear_mnist}, {"conv", conv_mnist}};
  return table;
}

const Table& cifar_table() {
  static const Table table = [] {
    Table t;
    for (const int depth : {20, 32, 44, 56, 110, 18, 34, 50})
      t.emplace_back(concat("resnet", depth),
                     [depth](std::int64_t n) { return cifar_resnet(depth, n); });
    t.emplace_back("mobilenetv2", cifar_mobilenetv2);
    for (const int depth : {11, 13, 16, 19})
      t.emplace_back(concat("vgg", depth), [depth](std::int64_t n) { return cifar_vgg(depth, n); });
    return t;
  }();
  return table;
}

const Table& imagenet_table() {
  static const Table table = [] {
    Table t;
    for (const int depth : {18, 34, 50, 101, 152})
      t.emplace_back(concat("resnet", depth), [depth](std::int64_t n) { return resnet(depth, n); });
    for (const bool bn : {false, true})
      for (const int depth : {11, 13, 16, 19})
        t.emplace_back(concat("vgg", depth, bn ? "_bn" : ""),
                       [depth, bn](std::int64_t n) { return vgg(depth, bn, n); });
    t.emplace_back("alexnet", alexnet);
    t.emplace_back("googlenet", googlenet);
    t.emplace_back("densenet121", densenet121);
    t.emplace_back("mobilenet_v2", mobilenet_v2);
    return t;
  }();
  return table;
}

struct Dataset {
  const char* name;
  std::int64_t classes;
  const Table& (*table)();
};

const Dataset datasets[] = {{"mnist", 10, mnist_table},
                            {"cifar10", 10, cifar_table},
                            {"cifar100", 100, cifar_table},
                            {"imagenet", 1000, imagenet_table}};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

const Dataset& find_dataset(const std::string& name) {
  for (const Dataset& d : datasets)
    if (name == d.name) return d;
  fail("unknown dataset '", name, "' (valid: ", joined(list_datasets()), ")");
}

}  // namespace

std::vector<std::string> list_datasets() {
  std::vector<std::string> names;
  for (const Dataset& d : datasets) names.emplace_back(d.name);
  return names;
}

std::vector<std::string> list_models(const std::string& dataset) {
  std::vector<std::string> names;
  for (const auto& entry : find_dataset(dataset).table()) names.push_back(entry.first);
  return names;
}

std::int64_t default_num_classes(const std::string& dataset) {
  return find_dataset(dataset).classes;
}

ModulePtr create(const std::string& dataset, const std::string& arch, std::int64_t num_classes) {
  const Dataset& d = find_dataset(dataset);
  if (num_classes < 0) fail("model ", arch, ": num_classes must be positive, got ", num_classes);
  for (const auto& [name, build] : d.table())
    if (name == arch) return build(num_classes == 0 ? d.classes : num_classes);
  fail("unknown ", dataset, " architecture '", arch, "' (valid: ", joined(list_models(dataset)),
       ")");
}

}  // namespace ds::nn::models
