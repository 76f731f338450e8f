"""Reference learning rates of timm's CosineLRScheduler as Point-MAE / I2P-MAE build it:

    CosineLRScheduler(optimizer, t_initial=epochs, lr_min=1e-6, warmup_lr_init=1e-6,
                      warmup_t=initial_epochs, cycle_limit=1, t_in_epochs=True)

stepped once per epoch (scheduler.step(epoch)), for the C schedule (optim.h cosine_lr) to compare.

usage: cosine_ref.py BASE_LR T_INITIAL WARMUP_T LR_MIN WARMUP_LR_INIT T_LAST
prints "# source: ..." then one line "EPOCH LR" (LR as %.17g) for EPOCH = 0..T_LAST.

With timm installed (python3 -c 'import timm') the values come from timm itself, and the
transcription below is checked against them (exit status 1 if they differ by more than 1e-15
relative). Without timm they come from the transcription: timm's scheduler/cosine_lr.py
CosineLRScheduler._get_lr with t_mul = 1, decay_rate = 1, k_decay = 1, warmup_prefix = False,
cycle_limit = 1, no noise (the arguments above), written from timm's code, standard library only.
"""
import math
import sys


def transcription(base_lr, t_initial, warmup_t, lr_min, warmup_lr_init, t):
    """timm CosineLRScheduler._get_lr(t) for one parameter group (see the module docstring)."""
    if warmup_t:
        warmup_step = (base_lr - warmup_lr_init) / warmup_t
    if t < warmup_t:
        return warmup_lr_init + t * warmup_step
    i = t // t_initial                      # cycle index (t_mul == 1)
    t_i = t_initial
    t_curr = t - t_initial * i
    gamma = 1.0 ** i                        # decay_rate == 1
    cycle_lr_min = lr_min * gamma
    lr_max = base_lr * gamma
    if i < 1:                               # cycle_limit == 1
        return cycle_lr_min + 0.5 * (lr_max - cycle_lr_min) * (1 + math.cos(math.pi * t_curr / t_i))
    return lr_min


def from_timm(base_lr, t_initial, warmup_t, lr_min, warmup_lr_init, last):
    """The same values from timm itself, or None if timm (or torch) is not installed."""
    try:
        from timm.scheduler.cosine_lr import CosineLRScheduler  # first: fails fast without timm
        import torch
    except ImportError:
        return None
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = CosineLRScheduler(opt, t_initial=t_initial, lr_min=lr_min, warmup_lr_init=warmup_lr_init,
                              warmup_t=warmup_t, cycle_limit=1, t_in_epochs=True)
    lrs = []
    for t in range(last + 1):
        sched.step(t)
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    base_lr, lr_min, warmup_lr_init = float(sys.argv[1]), float(sys.argv[4]), float(sys.argv[5])
    t_initial, warmup_t, last = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[6])
    mine = [transcription(base_lr, t_initial, warmup_t, lr_min, warmup_lr_init, t) for t in range(last + 1)]
    timm_lrs = from_timm(base_lr, t_initial, warmup_t, lr_min, warmup_lr_init, last)
    if timm_lrs is None:
        print("# source: transcription of timm CosineLRScheduler (timm not installed)")
        values = mine
    else:
        import timm
        print("# source: timm %s CosineLRScheduler" % timm.__version__)
        for t, (a, b) in enumerate(zip(mine, timm_lrs)):
            if abs(a - b) > 1e-15 * abs(b):
                sys.exit("cosine_ref.py: transcription %.17g != timm %.17g at epoch %d" % (a, b, t))
        values = timm_lrs
    for t, lr in enumerate(values):
        print("%d %.17g" % (t, lr))


if __name__ == "__main__":
    main()
