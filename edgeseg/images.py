"""Reading image files: one reader for datasets and demos, with the same formats and the same checks.

An image or label larger than `MAX_IMAGE_PIXELS` is refused before it is decoded: datasets are held
in memory and labels are scored at their own resolution, so one huge file would cost gigabytes.
"""

import io
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from edgeseg.errors import DataError
from edgeseg.quiet import native_stderr_silenced

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MAX_IMAGE_PIXELS = 50_000_000
"""The largest image or label read, in pixels (e.g. 8160 x 6120); docs/RELIABILITY.md gives the memory it costs."""
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def decode(path: Path, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """The decoded image file (OpenCV's BGR order for color); a `DataError` naming the file when it
    cannot be read, is truncated, is too large or is not an image."""
    data = _checked_bytes(path)
    with native_stderr_silenced():  # libpng and libjpeg print their own complaints before failing
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if decoded is None:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    return decoded


def read_label(path: Path) -> np.ndarray:
    """A label file's values: a palette PNG's color indices (VOC's class ids are stored so), any
    other image as stored (OpenCV's BGR order for color)."""
    data = _checked_bytes(path)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[25:26] == b"\x03":  # PNG color type 3: palette indices
        try:
            with Image.open(io.BytesIO(data)) as image:
                return np.asarray(image, dtype=np.uint8)
        except (OSError, ValueError):
            raise DataError(f"{path}: not a readable image (corrupt or unsupported format)") from None
    return decode(path)


def _checked_bytes(path: Path) -> bytes:
    """The file's bytes, once it is known to be readable, not a truncated JPEG and within the size limit."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise DataError(f"{path}: truncated JPEG (no end-of-image marker)")
    width, height = _declared_size(data, path)
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: {width}x{height} pixels is more than edgeseg reads ({MAX_IMAGE_PIXELS:,}); resize it first")
    return data


def _declared_size(data: bytes, path: Path) -> tuple[int, int]:
    """(width, height) from the file's header, without decoding it; (0, 0) when the header is not
    one Pillow knows (the decoder then reports the file)."""
    try:
        with warnings.catch_warnings():  # Pillow's decompression-bomb warning would only repeat the refusal
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:  # past Pillow's own limit, which is above ours
        raise DataError(f"{path}: more pixels than edgeseg reads ({MAX_IMAGE_PIXELS:,}); resize it first") from None
    except (UnidentifiedImageError, OSError, ValueError):
        return 0, 0


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3]."""
    return cv2.cvtColor(decode(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
