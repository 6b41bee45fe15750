"""A group configuration for ``msoptim preview --groups``: the seed's lrs for a 30-epoch run.

Preview it with::

    msoptim preview --groups examples/preview_groups_config.py --png groups.png

(or run this file). ``groups`` lists one dict per parameter group with the keys an optimizer takes
(``params`` may be left out: the preview makes placeholder parameters; ``name`` labels the curve);
``steps`` and ``learning_rate`` (the lr of groups without ``lr``) are optional.
"""

import msoptim

EPOCHS, STEP_PER_EPOCH = 30, 50
steps = EPOCHS * STEP_PER_EPOCH
learning_rate = 0.1

groups = [
    {
        "name": "conv",
        "lr": msoptim.cosine_decay_lr(0.0, 1e-3, steps, STEP_PER_EPOCH, EPOCHS),
        "weight_decay": 1e-4,
    },
    {"name": "bn", "lr": 1e-4, "weight_decay": 0.0},
    {"name": "dense", "lr": 1e-3, "weight_decay": 1e-5},
    {"name": "warmup", "lr": msoptim.WarmUpLR(1e-3, 5 * STEP_PER_EPOCH)},
    {"name": "other"},
]

if __name__ == "__main__":
    from msoptim import preview

    raise SystemExit(preview.main(["--groups", __file__]))
