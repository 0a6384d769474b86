"""Quantization: the libraries the `quantize` and `verify` stages call.

    converters.py  Keras model -> `.tflite`: full int8, int16x8, float16, dynamic, float; calibration images
    aware.py       quantization-aware training with TF-MOT, keeping pruned zeros and clusters
    debug.py       where int8 loses accuracy: per-tensor error, and what keeping a layer in float gives back
    repair.py      `mode: auto`: int8, then repairs in order until the mIoU drop fits a budget

Nothing here imports a stage; import the module you need (`from edgeseg.quantization.converters import ...`).
"""
