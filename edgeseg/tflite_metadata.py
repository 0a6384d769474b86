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
    """A copy of `model` carrying `entries`; an entry of the same name is replaced, in its own
    buffer, so embedding again does not leave the old content behind in the file."""
    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    existing = {_name(entry): entry for entry in (tree.metadata or [])}
    for name, content in entries.items():
        entry = existing.get(name)
        if entry is None:
            entry = existing[name] = schema.MetadataT()
            entry.name, entry.buffer = name, len(tree.buffers)
            tree.buffers.append(schema.BufferT())
        tree.buffers[entry.buffer].data = list(content)
    tree.metadata = list(existing.values())
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tree))


def read_metadata(model: bytes) -> dict[str, bytes]:
    """Every named metadata entry of `model`, including the converter's own."""
    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    return {_name(entry): _buffer_bytes(tree.buffers[entry.buffer]) for entry in (tree.metadata or [])}


def _buffer_bytes(buffer) -> bytes:
    return b"" if buffer.data is None else bytes(bytearray(buffer.data))


def _name(entry) -> str:
    return entry.name.decode() if isinstance(entry.name, bytes) else entry.name
