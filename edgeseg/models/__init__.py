"""Models: the zoo (`zoo`, `backbones`, `heads`), model files (`io`, `kinds`, `teachers`), ImageNet
weights (`imagenet`), copies (`copying`) and the class-ids output (`labels`).

Nothing here is imported by this package's `__init__`, so `edgeseg.models.kinds` stays free of
TensorFlow for recipe validation.
"""
