"""Named metadata entries inside a `.tflite`, so the file describes itself.

Entries are stored in the flatbuffer's standard `metadata` list (name + buffer), which any
flatbuffer reader can list; the interpreter ignores them, so predictions are unchanged.

Example::

    tagged = embed_metadata(model_bytes, {"labels.txt": b"sky\nroad\n"})
    read_metadata(tagged)["labels.txt"]
"""

from edgeseg._keras import native_stderr_silenced

with native_stderr_silenced():
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils


def embed_metadata(model: bytes, entries: dict[str, bytes]) -> bytes:
    """A copy of `model` carrying `entries`; an entry of the same name is replaced."""
    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    kept = [entry for entry in (tree.metadata or []) if _name(entry) not in entries]
    for name, content in entries.items():
        buffer = schema.BufferT()
        buffer.data = list(content)
        tree.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name, entry.buffer = name, len(tree.buffers) - 1
        kept.append(entry)
    tree.metadata = kept
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def read_metadata(model: bytes) -> dict[str, bytes]:
    """Every named metadata entry of `model`, including the converter's own."""
    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    return {_name(entry): _buffer_bytes(tree.buffers[entry.buffer]) for entry in (tree.metadata or [])}


def _buffer_bytes(buffer) -> bytes:
    return b"" if buffer.data is None else bytes(bytearray(buffer.data))


def _name(entry) -> str:
    return entry.name.decode() if isinstance(entry.name, bytes) else entry.name
