"""Measure what the head's output form costs and gives, for docs/MODELS.md: each trained model as a
full-int8 file with logits, with labels (argmax after the upsample) and with labels (argmax before
it): size, interpreter latency, and val mIoU on the recipe's data.

    python tools/measure_heads.py recipes/camvid_full.yaml runs/camvid_full/01-train/model.keras \
        runs/camvid_full/04-cluster/model.keras --out /tmp/heads.md
"""

import argparse
from pathlib import Path

from edgeseg.data import load_split
from edgeseg.models.io import load_model
from edgeseg.quantization.converters import calibration_images
from edgeseg.recipe import load_recipe
from edgeseg.zoo_measurements import head_outputs_markdown, measure_head_outputs, publish

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("recipe", type=Path, help="the recipe whose data (train for calibration, val for mIoU) to use")
parser.add_argument("models", type=Path, nargs="+", help="trained Keras models made by that recipe")
parser.add_argument("--calibration-images", type=int, default=200)
parser.add_argument("--out", type=Path, help="write the markdown table here (and the rows as .json beside it)")
arguments = parser.parse_args()
recipe = load_recipe(arguments.recipe)
train, val = load_split(recipe.data, "train", recipe.seed), load_split(recipe.data, "val", recipe.seed)
calibration = calibration_images(train.images, arguments.calibration_images, recipe.seed)
rows = [
    row for path in arguments.models for row in measure_head_outputs(load_model(path), calibration, val, len(recipe.data.classes))
]
command = f"python tools/measure_heads.py {arguments.recipe} {' '.join(map(str, arguments.models))}"
publish(head_outputs_markdown(rows, command), rows, arguments.out)
