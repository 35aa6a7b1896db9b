#!/usr/bin/python3
"""Writes the optimizer and scheduler fixtures of tests/optim (format: tests/golden/README.md).

Run with Debian's interpreter, which has torch:
    /usr/bin/python3 tests/optim/golden/generate_optim.py

optim_trajectories.golden: case `problem` holds a small least-squares-plus-quartic problem
(x, y and the initial weight and bias); every other case is an optimizer configuration (written
out on both sides: in OPTIMIZER_CASES here and in the table of problem.cpp) and holds the
parameters after 0..STEPS steps, `weight` [STEPS+1, 3, 4] and `bias` [STEPS+1, 4]. SGD and Adam
are torch.optim's; RAdam and Ranger are the reference implementations below, written from
DESIGN.md section 3 (the original DeepShift code's formulas).

extra_optimizers.golden: the same trajectories, on the same problem, for torch.optim's
Adadelta, Adagrad and RMSprop (EXTRA_OPTIMIZER_CASES here, the table of
test_extra_optimizers.cpp there).

lr_schedulers.golden: per scheduler case, `lr` [EPOCHS+1, groups] holds get_last_lr() after
construction and after each step(), and `closed` the closed-form lrs at the same epochs.
"""
import math
import os

import torch

SEED = 20240611
STEPS = 40
# The f32 tolerance of the C++ trajectory tests; keep both in step.
F32_RTOL, F32_ATOL = 5e-5, 5e-6
HERE = os.path.dirname(os.path.abspath(__file__))
F64 = torch.float64


class RAdamReference(torch.optim.Optimizer):
    """RAdam as DESIGN.md section 3 (and the original project's optim/radam.py) define it;
    with lookahead_k it is Ranger (strict threshold rho_t > 5, then Lookahead)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 strict_threshold=False, lookahead_k=None, lookahead_alpha=0.5):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.strict_threshold = strict_threshold
        self.lookahead_k = lookahead_k
        self.lookahead_alpha = lookahead_alpha
        self.branches = set()  # which side of the rho_t threshold the steps took
        self.syncs = 0

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if self.lookahead_k:
                        state["slow"] = p.clone()
                grad = p.grad
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
                beta2_t = beta2 ** t
                rho_inf = 2.0 / (1.0 - beta2) - 1.0
                rho_t = rho_inf - 2.0 * t * beta2_t / (1.0 - beta2_t)
                rectified = rho_t > 5.0 if self.strict_threshold else rho_t >= 5.0
                self.branches.add(rectified)
                if group["weight_decay"] != 0:
                    p.add_(p, alpha=-group["weight_decay"] * group["lr"])
                if rectified:
                    step_size = math.sqrt((1.0 - beta2_t) * (rho_t - 4.0) / (rho_inf - 4.0) *
                                          (rho_t - 2.0) / rho_t * rho_inf / (rho_inf - 2.0)) / (
                                              1.0 - beta1 ** t)
                    denom = v.sqrt().add_(group["eps"])
                    p.add_(m / denom, alpha=-step_size * group["lr"])
                else:
                    step_size = 1.0 / (1.0 - beta1 ** t)
                    p.add_(m, alpha=-step_size * group["lr"])
                if self.lookahead_k and t % self.lookahead_k == 0:
                    slow = state["slow"]
                    slow.add_(p - slow, alpha=self.lookahead_alpha)
                    p.copy_(slow)
                    self.syncs += 1


def radam(params, **options):
    return RAdamReference(params, **options)


def ranger(params, lookahead_k=6, lookahead_alpha=0.5, betas=(0.95, 0.999), eps=1e-5,
           **options):
    return RAdamReference(params, betas=betas, eps=eps, strict_threshold=True,
                          lookahead_k=lookahead_k, lookahead_alpha=lookahead_alpha, **options)


def groups(weight_options, bias_options):
    """Weight and bias in separate groups, as the trainers separate .sign/.shift parameters."""
    return lambda w, b: [dict(params=[w], **weight_options), dict(params=[b], **bias_options)]


def together(w, b):
    return [w, b]


# (case, optimizer factory, parameter grouping, optimizer-wide options)
OPTIMIZER_CASES = [
    ("sgd_plain", torch.optim.SGD, together, dict(lr=0.1)),
    ("sgd_momentum", torch.optim.SGD, together, dict(lr=0.05, momentum=0.9)),
    ("sgd_dampening", torch.optim.SGD, together, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd_nesterov", torch.optim.SGD, together, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd_weight_decay", torch.optim.SGD, together,
     dict(lr=0.05, momentum=0.9, weight_decay=0.05)),
    ("sgd_groups", torch.optim.SGD, groups({}, dict(lr=0.01, momentum=0.5, weight_decay=0.0)),
     dict(lr=0.1, momentum=0.9, weight_decay=0.02)),
    ("adam", torch.optim.Adam, together, dict(lr=0.05)),
    ("adam_weight_decay", torch.optim.Adam, together, dict(lr=0.05, weight_decay=0.1)),
    ("adam_amsgrad", torch.optim.Adam, together,
     dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True)),
    ("adam_groups", torch.optim.Adam, groups({}, dict(lr=0.01, betas=(0.5, 0.9), eps=1e-4)),
     dict(lr=0.05)),
    ("radam", radam, together, dict(lr=0.05)),
    ("radam_weight_decay", radam, together, dict(lr=0.05, weight_decay=0.1)),
    ("radam_groups", radam, groups({}, dict(lr=0.01, weight_decay=0.0, betas=(0.8, 0.99))),
     dict(lr=0.05, weight_decay=0.05)),
    ("ranger", ranger, together, dict(lr=0.05)),
    ("ranger_weight_decay", ranger, together, dict(lr=0.05, weight_decay=0.1)),
    ("ranger_lookahead", ranger, together,
     dict(lr=0.05, lookahead_k=4, lookahead_alpha=0.8, betas=(0.9, 0.99), eps=1e-6)),
]

# Cases named after the optimizer alone run with every default, so that the C++ defaults are
# checked against torch's.
EXTRA_OPTIMIZER_CASES = [
    ("adadelta", torch.optim.Adadelta, together, dict()),
    ("adadelta_weight_decay", torch.optim.Adadelta, together,
     dict(lr=2.0, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("adadelta_groups", torch.optim.Adadelta, groups({}, dict(lr=3.0, eps=1e-5, weight_decay=0.0)),
     dict(weight_decay=0.05)),
    ("adagrad", torch.optim.Adagrad, together, dict()),
    ("adagrad_lr_decay", torch.optim.Adagrad, together,
     dict(lr=0.2, lr_decay=0.05, weight_decay=0.05, initial_accumulator_value=0.5, eps=1e-6)),
    ("adagrad_groups", torch.optim.Adagrad, groups({}, dict(lr=0.3, weight_decay=0.01)),
     dict(lr=0.1)),
    ("rmsprop", torch.optim.RMSprop, together, dict()),
    ("rmsprop_momentum", torch.optim.RMSprop, together,
     dict(lr=0.005, momentum=0.9, weight_decay=0.05)),
    ("rmsprop_centered", torch.optim.RMSprop, together,
     dict(lr=0.01, alpha=0.95, eps=1e-4, momentum=0.5, centered=True)),
    ("rmsprop_groups", torch.optim.RMSprop, groups({}, dict(lr=0.002, momentum=0.0, eps=1e-5)),
     dict(lr=0.01, momentum=0.9)),
]

# (case, scheduler factory, initial lrs of the groups, epochs)
SCHEDULER_CASES = [
    ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3), [0.1, 0.02], 20),
    ("step_half", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), [0.3],
     15),
    ("multistep_cifar",
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[80, 120, 160, 180]), [0.1],
     200),
    ("multistep_repeated",
     lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[6, 3, 9, 6], gamma=0.5),
     [0.1, 0.01], 12),
    ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001),
     [0.1, 0.05], 35),
    ("cosine_cifar", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=200),
     [0.1], 200),
]


def loss_of(x, y, weight, bias):
    return ((x @ weight + bias - y) ** 2).mean() + 0.01 * (weight ** 4).sum()


def tensor_line(key, t):
    t = t.detach().to(F64).contiguous()
    dims = " ".join(str(d) for d in t.shape)
    values = " ".join("%.17g" % v for v in t.reshape(-1).tolist())
    return "tensor %s f64 %d%s : %s" % (key, t.dim(), " " + dims if dims else "", values)


def header(what):
    return ["# %s; see tests/optim/README.md." % what,
            "# Generated by tests/optim/golden/generate_optim.py (torch %s, seed %d). "
            "Do not edit by hand." % (torch.__version__, SEED)]


def problem():
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(8, 3, dtype=F64, generator=gen)
    y = torch.randn(8, 4, dtype=F64, generator=gen)
    weight0 = torch.randn(3, 4, dtype=F64, generator=gen)
    bias0 = torch.randn(4, dtype=F64, generator=gen)
    return x, y, weight0, bias0


def run(case, factory, grouping, options, dtype):
    """The weights and biases after 0..STEPS steps, stacked."""
    x, y, weight0, bias0 = (t.to(dtype) for t in problem())
    weight = weight0.clone().requires_grad_()
    bias = bias0.clone().requires_grad_()
    optimizer = factory(grouping(weight, bias), **options)
    weights, biases = [weight.detach().clone()], [bias.detach().clone()]
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss_of(x, y, weight, bias).backward()
        optimizer.step()
        weights.append(weight.detach().clone())
        biases.append(bias.detach().clone())
    if isinstance(optimizer, RAdamReference):
        assert optimizer.branches == {False, True}, case + " must cross the rho_t threshold"
        assert optimizer.lookahead_k is None or optimizer.syncs >= 2, case
    return torch.stack(weights), torch.stack(biases)


def trajectories(cases):
    """One case per optimizer configuration. Each is also run in f32, which must stay within
    the C++ test's f32 tolerance of the f64 run: no case may be too ill-conditioned for f32."""
    lines = []
    for case in cases:
        name = case[0]
        exact = run(*case, F64)
        for reference, single in zip(exact, run(*case, torch.float32)):
            assert torch.allclose(single.to(F64), reference, rtol=F32_RTOL, atol=F32_ATOL), (
                name + " does not hold the f32 tolerance")
        lines.append("case " + name)
        lines.append(tensor_line(name + "/weight", exact[0]))
        lines.append(tensor_line(name + "/bias", exact[1]))
    return lines


def problem_case():
    lines = ["case problem"]
    for name, value in zip(["x", "y", "weight", "bias"], problem()):
        lines.append(tensor_line("problem/" + name, value))
    return lines


def schedules():
    lines = header("Learning-rate schedules")
    for case, factory, initial_lrs, epochs in SCHEDULER_CASES:
        params = [torch.zeros(1, requires_grad=True) for _ in initial_lrs]
        optimizer = torch.optim.SGD([dict(params=[p], lr=lr) for p, lr in zip(params, initial_lrs)],
                                    lr=initial_lrs[0])
        scheduler = factory(optimizer)
        lrs = [scheduler.get_last_lr()]
        closed = [scheduler._get_closed_form_lr()]
        for _ in range(epochs):
            optimizer.step()
            scheduler.step()
            lrs.append(scheduler.get_last_lr())
            closed.append(scheduler._get_closed_form_lr())
        lines.append("case " + case)
        lines.append(tensor_line(case + "/lr", torch.tensor(lrs, dtype=F64)))
        lines.append(tensor_line(case + "/closed", torch.tensor(closed, dtype=F64)))
    return lines


def write(name, lines):
    with open(os.path.join(HERE, name), "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    write("optim_trajectories.golden",
          header("Optimizer trajectories") + problem_case() + trajectories(OPTIMIZER_CASES))
    write("extra_optimizers.golden",
          header("Adadelta, Adagrad and RMSprop trajectories") +
          trajectories(EXTRA_OPTIMIZER_CASES))
    write("lr_schedulers.golden", schedules())
