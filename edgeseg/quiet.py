"""Keeping native libraries' chatter (TensorFlow, LiteRT) out of edgeseg's output."""

import contextlib
import ctypes
import os
import sys
import tempfile

# Native code writes through C stdio, which buffers a redirected stream: flushing it before the
# stream is put back keeps what was written while silenced from surfacing afterwards.
_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def native_stderr_silenced():
    """Silences what native code writes to file descriptor 2; replays it if the block raises.

    Example:
        >>> with native_stderr_silenced():
        ...     import tensorflow
    """
    with _native_stream_silenced(sys.stderr):
        yield


@contextlib.contextmanager
def native_output_silenced():
    """Silences both standard streams of native code (the converter prints its settings on stdout)."""
    with _native_stream_silenced(sys.stdout), _native_stream_silenced(sys.stderr):
        yield


@contextlib.contextmanager
def _native_stream_silenced(stream):
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture, notebooks
        yield
        return
    stream.flush()
    saved_fd = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            _LIBC.fflush(None)
            os.dup2(saved_fd, fd)
            sink.seek(0)
            stream.write(sink.read().decode(errors="replace"))
            raise
        finally:
            _LIBC.fflush(None)
            os.dup2(saved_fd, fd)
            os.close(saved_fd)
