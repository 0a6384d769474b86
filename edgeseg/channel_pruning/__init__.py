"""Channel pruning: removing whole channels, so an int8 model is really smaller and faster.

TF-MOT's pruning only zeroes weights, and LiteRT's int8 kernels compute the zeros all the same;
these modules remove channels from a functional tf_keras model instead, Torch-Pruning style.

    groups.py      dependency groups: the channels that must go together, read from the model's graph
    importance.py  a score per channel of each group: l1, l2, BatchNorm scale, first-order Taylor
    allocation.py  which channels to keep for a MACs or parameter target, and what a plan costs
    removal.py     a new model without the removed channels, every weight sliced to match

Nothing here imports a stage; import the module you need.
"""
