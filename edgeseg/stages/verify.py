"""`verify`: score the `.tflite` with the interpreter next to the float model, and apply the gates."""

from edgeseg.scoring import KerasSegmenter, score_split
from edgeseg.stages.base import PipelineState, StageOutcome
from edgeseg.tflite import TFLiteSegmenter


def gate_failures(cfg, float_miou: float, int8_miou: float) -> list[str]:
    """One line per failed gate of the `verify:` section."""
    failures = []
    if cfg.min_miou is not None and int8_miou < cfg.min_miou:
        failures.append(f"verify.min_miou: int8 mIoU {int8_miou:.4f} is below {cfg.min_miou}")
    drop = float_miou - int8_miou
    if cfg.max_miou_drop is not None and drop > cfg.max_miou_drop:
        failures.append(
            f"verify.max_miou_drop: int8 mIoU {int8_miou:.4f} is {drop:.4f} below float {float_miou:.4f}, "
            f"more than {cfg.max_miou_drop}"
        )
    return failures


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Scores float Keras and the int8 `.tflite` on the same val images; records failed gates."""
    float_scores = score_split(KerasSegmenter(state.model), ctx.val, ctx.num_classes, desc="scoring float")
    segmenter = TFLiteSegmenter(state.tflite, threads=cfg.threads)
    int8_scores = score_split(segmenter, ctx.val, ctx.num_classes, desc="scoring int8")
    record = {
        "float": float_scores,
        "int8": int8_scores,
        "miou_drop": float_scores["miou"] - int8_scores["miou"],
        "latency": {**segmenter.latency_ms(), "threads": cfg.threads},
        "failed_gates": gate_failures(cfg, float_scores["miou"], int8_scores["miou"]),
    }
    return StageOutcome(state, record)
