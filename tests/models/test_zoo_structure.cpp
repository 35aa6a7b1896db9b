// The factory's names and errors, and that a child swapped by replace_child is the one a
// forward pass runs.
#include <catch2/catch.hpp>

#include "autograd/grad_mode.hpp"
#include "nn/layers.hpp"
#include "nn/models/zoo.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"

namespace models = ds::nn::models;
using ds::Shape;
using ds::Tensor;

TEST_CASE("num_classes 0 picks the dataset's class count") {
  CHECK(models::default_num_classes("cifar100") == 100);
  const auto model = models::create("cifar100", "resnet20");
  CHECK(model->child("linear")->named_parameters()[0].tensor.shape() == Shape{100, 64});
  const auto custom = models::create("imagenet", "mobilenet_v2", 7);
  CHECK(custom->state_dict().back().tensor.shape() == Shape{7});
}

TEST_CASE("unknown names are errors that list the valid ones") {
  CHECK_THROWS_WITH(models::create("cifar10", "resnet21"),
                    Catch::Contains("resnet21") && Catch::Contains("resnet20, resnet32") &&
                        Catch::Contains("vgg19"));
  CHECK_THROWS_WITH(
      models::create("svhn", "resnet20"),
      Catch::Contains("svhn") && Catch::Contains("mnist, cifar10, cifar100, imagenet"));
  CHECK_THROWS_WITH(models::list_models("cifar"), Catch::Contains("cifar"));
  CHECK_THROWS_WITH(models::create("mnist", "conv", -3), Catch::Contains("-3"));
  CHECK_THROWS_WITH(models::cifar_resnet(22), Catch::Contains("20, 32, 44, 56, 110, 18, 34, 50"));
  CHECK_THROWS_WITH(models::vgg(12, false), Catch::Contains("11, 13, 16, 19"));
}

TEST_CASE("forward passes run the children that replace_child put in place") {
  const auto model = models::create("cifar10", "resnet20");
  model->eval();
  const Tensor x = ds::randn({1, 3, 32, 32});
  const Tensor before = (*model)(x);
  // A new classifier at the top, and a zeroed first convolution deep inside a block: both must
  // change the output, which they can only do if forward looks its children up by name.
  model->replace_child("linear", std::make_shared<ds::nn::Linear>(64, 5));
  CHECK((*model)(x).shape() == Shape{1, 5});
  auto block = model->child("layer1")->child("0");
  auto conv =
      std::make_shared<ds::nn::Conv2d>(ds::nn::Conv2dOptions::square(16, 16, 3, 1, 1, false));
  const Tensor head = (*model)(x);
  {
    ds::NoGradGuard no_grad;
    conv->weight().zero_();
  }
  block->replace_child("conv1", conv);
  const Tensor after = (*model)(x);
  CHECK(ds::max(ds::abs(after - head)).item() > 1e-6);
  CHECK(before.shape() == Shape{1, 10});
}
