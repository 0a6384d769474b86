"""The report's PNG plots: mIoU vs size, per-class IoU float vs quantized, confusion matrix, overlay gallery."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from edgeseg.files import atomic_path
from edgeseg.overlay import overlay


def plot_miou_vs_size(points: list[tuple[str, float, float]], path: Path) -> Path:
    """One labeled point per model: (name, size in KiB, mIoU)."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for _, size_kib, miou in points:
        axes.scatter(size_kib, miou, s=40)
    axes.plot([p[1] for p in points], [p[2] for p in points], color="0.7", linewidth=1, zorder=0)
    axes.set_xscale("log")
    annotate_apart(axes, points, fontsize=9, offset=(6, 4))
    axes.set_xlabel("model file size (KiB, log scale)")
    axes.set_ylabel("val mIoU")
    axes.set_title("Accuracy and size through the stages")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def annotate_apart(axes, labels: list[tuple[str, float, float]], fontsize: float, offset: tuple[float, float]) -> None:
    """Writes each label (text, x, y in data coordinates) at `offset` points from its point, so that
    no two overlap: a label that would cover one already written, top to bottom, goes a line lower
    (models of one size, or of one latency, share an x). Call it once the axes hold every point and
    their scales are set, so that data map to the pixels they will be drawn at."""
    axes.autoscale_view()
    pixels = axes.figure.dpi / 72
    line = 1.3 * fontsize
    placed: list[tuple[float, float, float]] = []  # each label's left, right and baseline, in pixels
    anchors = axes.transData.transform([(x, y) for _, x, y in labels]) if labels else []
    for index in sorted(range(len(labels)), key=lambda index: -labels[index][2]):
        text, (x, y) = labels[index][0], anchors[index]
        left, width = x + offset[0] * pixels, 0.6 * fontsize * len(text) * pixels
        rise = offset[1]
        while any(
            left < right_placed and left_placed < left + width and abs(y + rise * pixels - baseline) < line * pixels
            for left_placed, right_placed, baseline in placed
        ):
            rise -= line
        placed.append((left, left + width, y + rise * pixels))
        axes.annotate(text, labels[index][1:], fontsize=fontsize, xytext=(offset[0], rise), textcoords="offset points")


def plot_class_iou(class_names, float_iou, quantized_iou, path: Path) -> Path:
    """Grouped bars of each class's IoU, float model vs quantized .tflite."""
    positions = np.arange(len(class_names))
    figure, axes = plt.subplots(figsize=(max(6.4, 0.7 * len(class_names) + 2), 4.2))
    axes.bar(positions - 0.2, [v or 0 for v in float_iou], 0.4, label="float Keras")
    axes.bar(positions + 0.2, [v or 0 for v in quantized_iou], 0.4, label="quantized .tflite")
    axes.set_xticks(positions, class_names, rotation=30, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("IoU")
    axes.set_title("Per-class IoU, float vs quantized (val)")
    axes.legend()
    axes.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def plot_confusion(matrix, class_names, path: Path) -> Path:
    """Row-normalized confusion matrix: each row shows where that true class's pixels went."""
    matrix = np.asarray(matrix, np.float64)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.8, 0.55 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for (row, column), value in np.ndenumerate(rows):
        if value >= 0.005:
            axes.text(
                column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.5 else "black"
            )
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("Confusion matrix, quantized .tflite (rows sum to 1)")
    return _save(figure, path)


def plot_gallery(images, columns: list, colors, ignore_index: int, path: Path) -> Path:
    """One row per image; `columns` are (title, class-id maps [N, H, W]) overlaid on it, or
    (title, None) for the image itself."""
    figure, grid = plt.subplots(len(images), len(columns), figsize=(2.5 * len(columns), 2.6 * len(images)), squeeze=False)
    for row, image in enumerate(images):
        for column, (title, maps) in enumerate(columns):
            shown = image if maps is None else overlay(image, maps[row], colors, 0.55, ignore_index)
            grid[row, column].imshow(shown)
            grid[row, column].set_axis_off()
            if row == 0:
                grid[row, column].set_title(title)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return path
