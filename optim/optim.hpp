#pragma once
// Everything in optim/: optimizers, parameter groups and learning-rate schedules.
#include "optim/adadelta.hpp"
#include "optim/adagrad.hpp"
#include "optim/adam.hpp"
#include "optim/lr_scheduler.hpp"
#include "optim/optimizer.hpp"
#include "optim/parameter.hpp"
#include "optim/radam.hpp"
#include "optim/rmsprop.hpp"
#include "optim/sgd.hpp"
