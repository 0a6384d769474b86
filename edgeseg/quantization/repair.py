"""`quantize: {mode: auto}`: plain int8 first, then repairs in order of what they cost, until the val
mIoU drop fits the budget.

1. `int8`: full-integer PTQ with the recipe's calibration images.
2. `more_calibration`: every train image and its mirror image as calibration data.
3. `float_layers`: the quantization debugger ranks tensors by error; the worst are each tried in
   float, and those that give mIoU back (at most `float_layers` of them) stay in float in an
   otherwise int8 file with the same uint8 input.
4. `int16x8`: 16-bit activations, int8 weights.
5. `qat`: quantization-aware fine-tuning (`quantize.qat`, or its defaults), then int8.

Every attempt's figures are kept, and its file is written to `<stage>/attempts/`. The budget is
judged on the val split, the same split `verify` reports, so the chosen attempt's drop is the one
the report shows.

Example:
    >>> steps = [("int8", lambda: {"tflite": b"...", "mode": "int8"})]
    >>> chosen = first_within_budget(steps, drop_of=lambda tflite: 0.001, budget=0.003)
    >>> chosen["attempt"], [row["attempt"] for row in chosen["attempts"]]
    ('int8', ['int8'])
"""

import logging
import time
from collections.abc import Callable

import numpy as np

from edgeseg.errors import StageError
from edgeseg.files import write_bytes_atomic
from edgeseg.models.labels import shipped_form
from edgeseg.quantization.converters import calibration_images, convert, convert_int8
from edgeseg.quantization.debug import debug_quantization

log = logging.getLogger("edgeseg")


def first_within_budget(
    steps: list[tuple[str, Callable[[], dict]]],
    drop_of: Callable[[bytes], float],
    budget: float,
    save: Callable[[str, bytes], None] = lambda name, tflite: None,
) -> dict:
    """Runs `steps` in order until one's mIoU drop is at most `budget`.

    Each step is (name, make); `make()` returns {"tflite": bytes, "mode": ..., **details}, or
    {"skipped": reason} when it cannot improve on what came before. Returns the chosen step's
    result with "attempt" and the figures of every step run ("attempts"); raises `StageError`
    listing them all when none fits.
    """
    attempts = []
    for name, make in steps:
        started = time.perf_counter()
        result = make()
        if "skipped" in result:
            log.info("  auto: %s skipped: %s", name, result["skipped"])
            attempts.append({"attempt": name, "skipped": result["skipped"]})
            continue
        save(name, result["tflite"])
        drop = drop_of(result["tflite"])
        details = {key: value for key, value in result.items() if key != "tflite"}
        attempts.append(
            {
                "attempt": name,
                **details,
                "miou_drop": drop,
                "bytes": len(result["tflite"]),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        # Six decimals: at four, a drop just over the budget printed as equal to it.
        log.info("  auto: %s loses %.6f mIoU (budget %g)", name, drop, budget)
        if drop <= budget:
            return {**result, "attempt": name, "attempts": attempts}
    tried = "; ".join(f"{row['attempt']} {_outcome(row)}" for row in attempts)
    raise StageError(f"quantize: mode auto found no attempt within max_miou_drop {budget}: {tried}")


def repair_steps(model, cfg, ctx, images: np.ndarray, train_qat, float_miou_of) -> list[tuple[str, Callable[[], dict]]]:
    """The steps of `mode: auto` for `model`, in order, starting from the recipe's calibration `images`."""

    def int8(quantizable, calibration, **options):
        return convert_int8(shipped_form(quantizable, cfg.output), calibration, output_type=cfg.output_type, **options)

    mirrored = np.concatenate([ctx.train.images, ctx.train.images[:, :, ::-1]])

    def plain():
        return {"tflite": int8(model, images), "mode": "int8", "calibration_images": len(images)}

    def more_calibration():
        if len(mirrored) <= cfg.calibration_images:
            return {
                "skipped": f"calibration_images {cfg.calibration_images} already covers the {len(ctx.train)} "
                "train images and their mirror images"
            }
        every = calibration_images(mirrored, len(mirrored), ctx.seed)
        return {"tflite": int8(model, every), "mode": "int8", "calibration_images": len(every)}

    def float_layers():
        found = debug_quantization(model, images, float_miou_of, layers=2 * cfg.float_layers)
        helpful = sorted((row for row in found["layers"] if row["miou_gain"] > 0), key=lambda row: -row["miou_gain"])
        chosen = helpful[: cfg.float_layers]
        if not chosen:
            return {"skipped": f"none of the {len(found['layers'])} worst layers gives mIoU back in float"}
        return {
            "tflite": int8(model, images, float_tensors=[row["tensor"] for row in chosen]),
            "mode": "int8",
            "float_layers": [row["layer"] for row in chosen],
        }

    def int16x8():
        return {"tflite": convert(shipped_form(model, cfg.output), "int16x8", images), "mode": "int16x8"}

    def qat():
        qat_model, details = train_qat(model)
        return {"tflite": int8(qat_model, images), "mode": "int8", **details}

    return [
        ("int8", plain),
        ("more_calibration", more_calibration),
        ("float_layers", float_layers),
        ("int16x8", int16x8),
        ("qat", qat),
    ]


def attempt_saver(folder):
    """Writes each attempt's file as `<folder>/NN-<name>.tflite`, so no attempt is lost."""
    counter = iter(range(1, 100))

    def save(name: str, tflite: bytes) -> None:
        write_bytes_atomic(folder / f"{next(counter):02d}-{name}.tflite", tflite)

    return save


def _outcome(row: dict) -> str:
    return f"skipped ({row['skipped']})" if "skipped" in row else f"drop {row['miou_drop']:.6f}"
