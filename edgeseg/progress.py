"""Progress bars for long loops: live on a terminal, quiet when output is a file or CI log."""

import os
import sys

from tqdm.auto import tqdm


def progress(iterable, desc: str, unit: str = "it", total: int | None = None):
    """Wraps an iterable in a progress bar shown on stderr when it is a terminal.

    Example::

        for image in progress(images, desc="calibrating", unit="img"): ...
    """
    disabled = not sys.stderr.isatty() or bool(os.environ.get("CI"))
    return tqdm(iterable, desc=desc, unit=unit, total=total, disable=disabled, leave=False, dynamic_ncols=True)
