#pragma once
// Everything in optim/: optimizers, parameter groups and learning-rate schedules.
#include "optim/adam.hpp"
#include "optim/lr_scheduler.hpp"
#include "optim/optimizer.hpp"
#include "optim/parameter.hpp"
#include "optim/radam.hpp"
#include "optim/sgd.hpp"
