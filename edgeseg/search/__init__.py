"""The budget search (`edgeseg search`): the best model within a latency, size, MACs or memory budget,
and the Pareto frontier of int8 mIoU against latency and size around it.

    candidates.py  a point of the search space, its untrained cost on the device, the recipe that trains it
    study.py       the Optuna study: trials, early stopping, finalists, the chosen export
    frontier.py    the Pareto frontier, its plot with the naive family, search.md

Nothing here imports a stage; the CLI calls `study.run_search`.
"""
