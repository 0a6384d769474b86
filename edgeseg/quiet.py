"""Keeping native libraries' chatter (TensorFlow, LiteRT) out of edgeseg's output."""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def native_stderr_silenced():
    """Silences what native code writes to file descriptor 2; replays it if the block raises.

    Example:
        >>> with native_stderr_silenced():
        ...     import tensorflow
    """
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, notebooks
        yield
        return
    sys.stderr.flush()
    saved_fd = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), stderr_fd)
        try:
            yield
        except BaseException:
            os.dup2(saved_fd, stderr_fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved_fd, stderr_fd)
            os.close(saved_fd)
