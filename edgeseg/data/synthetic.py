"""Procedural segmentation scenes: textured shapes over structured backgrounds.

Each class has its own shape and a favoured texture, but colors are random and shapes
overlap, vary in scale and sit under uneven lighting, so a model must learn shape and texture
together: learnable in minutes on a CPU, not solvable by color alone.

Example:
    >>> images, labels = generate_scenes(8, (64, 64), num_classes=4, seed=0, split="train")
    >>> images.shape, labels.shape
    ((8, 64, 64, 3), (8, 64, 64))
"""

import zlib

import cv2
import numpy as np

SYNTHETIC_CLASS_NAMES = ("background", "disk", "box", "triangle", "ring", "cross")


def generate_scenes(count: int, size: tuple[int, int], num_classes: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns `count` RGB uint8 images [N, H, W, 3] and class-id labels [N, H, W].

    Scene i of a split depends only on (seed, split, i), so growing `count` keeps earlier scenes.
    """
    if not 4 <= num_classes <= len(SYNTHETIC_CLASS_NAMES):
        raise ValueError(f"num_classes must be 4..{len(SYNTHETIC_CLASS_NAMES)}. Received: num_classes={num_classes}")
    split_key = zlib.crc32(split.encode())
    scenes = [_scene(np.random.default_rng([seed, split_key, i]), size, num_classes) for i in range(count)]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes])


def _scene(rng: np.random.Generator, size: tuple[int, int], num_classes: int):
    height, width = size
    image = _background(rng, height, width)
    label = np.zeros((height, width), np.uint8)
    for _ in range(rng.integers(2, 6)):
        class_id = int(rng.integers(1, num_classes))
        mask = _shape_mask(rng, class_id, height, width)
        texture = _texture(rng, class_id, height, width)
        image[mask] = texture[mask]
        label[mask] = class_id
    image = _lighting(rng, image)
    return np.clip(image, 0, 255).astype(np.uint8), label


def _background(rng, height, width) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * rows / height + np.sin(angle) * cols / width)[..., None]
    top, bottom = rng.uniform(30, 220, 3), rng.uniform(30, 220, 3)
    image = top + (bottom - top) * ramp
    period = rng.uniform(0.15, 0.5) * max(height, width)
    waves = np.sin(2 * np.pi * (rows * rng.uniform(-1, 1) + cols * rng.uniform(-1, 1)) / period)
    image += rng.uniform(5, 25) * waves[..., None]
    return image + rng.normal(0, 6, (height, width, 3))


def _shape_mask(rng, class_id, height, width) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    short_side = min(height, width)
    radius = max(3, int(rng.uniform(0.08, 0.3) * short_side))
    center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
    angle = rng.uniform(0, 2 * np.pi)
    kind = SYNTHETIC_CLASS_NAMES[class_id]
    if kind == "disk":
        cv2.circle(mask, center, radius, 1, -1)
    elif kind == "ring":
        cv2.circle(mask, center, radius, 1, max(2, radius // 3))
    elif kind == "cross":
        arm = max(1, radius // 3)
        for theta in (angle, angle + np.pi / 2):
            dx, dy = radius * np.cos(theta), radius * np.sin(theta)
            start = (int(center[0] - dx), int(center[1] - dy))
            end = (int(center[0] + dx), int(center[1] + dy))
            cv2.line(mask, start, end, 1, 2 * arm)
    else:
        corners = 4 if kind == "box" else 3
        aspect = rng.uniform(0.6, 1.0) if kind == "box" else 1.0
        thetas = angle + 2 * np.pi * np.arange(corners) / corners
        points = np.stack([center[0] + radius * np.cos(thetas), center[1] + aspect * radius * np.sin(thetas)], axis=1)
        cv2.fillPoly(mask, [points.round().astype(np.int32)], 1)
    return mask.astype(bool)


def _texture(rng, class_id, height, width) -> np.ndarray:
    """A random color with a pattern; each class favours one pattern 70% of the time."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    pattern = class_id % 3 if rng.random() < 0.7 else int(rng.integers(0, 3))
    period = rng.uniform(3, 7)
    theta = rng.uniform(0, np.pi)
    along = rows * np.cos(theta) + cols * np.sin(theta)
    if pattern == 0:
        modulation = np.zeros_like(rows)
    elif pattern == 1:
        modulation = np.sign(np.sin(2 * np.pi * along / period))
    else:
        modulation = np.sign(np.sin(2 * np.pi * rows / period) * np.sin(2 * np.pi * cols / period))
    color = rng.uniform(20, 235, 3)
    return color + rng.uniform(15, 40) * modulation[..., None] + rng.normal(0, 5, (height, width, 3))


def _lighting(rng, image) -> np.ndarray:
    height, width = image.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 1 + rng.uniform(-0.3, 0.3) * (rows / height - 0.5) + rng.uniform(-0.3, 0.3) * (cols / width - 0.5)
    return image * rng.uniform(0.7, 1.2) * light[..., None]
