"""Training recipes as torchvision's and timm's reference scripts use them, piece by piece: the
optimizers and schedules (`optim`), label smoothing, mixup, cutmix and random erasing
(`mixing`), RandAugment and TrivialAugmentWide (`autoaugment`), an exponential moving average
of the weights (`ema`) and knowledge distillation with a softmax temperature (`distill`). Each
piece is checked against the reference implementation it follows (tests/test_recipes_*.py).
"""
