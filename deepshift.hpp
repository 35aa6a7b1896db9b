#pragma once
// Umbrella header: everything a program needs to build, train and run DeepShift networks.
#include "autograd/function.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/node.hpp"
#include "tensor/ops.hpp"
#include "tensor/random.hpp"
#include "tensor/tensor.hpp"
