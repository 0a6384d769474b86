"""Reading image files: one reader for datasets and demos, with the same formats and the same checks."""

from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """The decoded image file (OpenCV's BGR order for color); a `DataError` naming the file when it
    cannot be read, is truncated or is not an image."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise DataError(f"{path}: truncated JPEG (no end-of-image marker)")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if decoded is None:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    return decoded


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3]."""
    return cv2.cvtColor(decode(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
