"""Standard TFLite model metadata in a logits export, so tools such as MediaPipe Tasks' ImageSegmenter
find its class names and how to feed it.

The standard (the `metadata_schema.fbs` of tensorflow/tflite-support, which MediaPipe also ships) is a
`ModelMetadata` flatbuffer stored as the model's metadata entry "TFLITE_METADATA", with its
associated files packed in a zip archive appended to the model file. edgeseg writes what an image
segmenter reads: the input is an RGB image taken as pixel values 0..255 (normalization mean 0, std 1,
since the model normalizes inside), the output's class names (`labels.txt`, one per line, by id), and
the segmenter's activation (none: the output is logits, their argmax the class ids). `edgeseg.json`
stays the complete contract; this is the part other tools understand.

A labels export (class ids [1, H, W]) is refused: MediaPipe reads it as scores and gives wrong masks
without an error, so such an export carries edgeseg's own metadata only.

The flatbuffer is written with the `flatbuffers` Builder from the table layouts below rather than
with generated code: tflite-support pins protobuf 3, and MediaPipe's writer conflicts with edgeseg's
environment.

Example::

    tagged = embed_standard_metadata(model_bytes, ["sky", "road"], version=recipe_hash)
    read_standard_metadata(tagged).class_names
"""

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import flatbuffers
import numpy as np
from flatbuffers.table import Table

from edgeseg.errors import ModelError
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_metadata import embed_metadata, read_metadata

METADATA_ENTRY = "TFLITE_METADATA"
LABELS_FILE = "labels.txt"
# The oldest metadata parser that reads every field written here: custom_metadata came in 1.5.0.
MIN_PARSER_VERSION = "1.5.0"
# The model takes pixels as they are: (pixel - 0) / 1, in 0..255.
PIXEL_MEAN, PIXEL_STD, PIXEL_MIN, PIXEL_MAX = 0.0, 1.0, 0.0, 255.0
# A fixed date keeps the packed file, and so the model, the same bytes on every export.
PACKED_FILE_DATE = (1980, 1, 1, 0, 0, 0)

# Each table's fields in schema order, which gives their slots; a union takes two, its type then its
# value. All but ImageSegmenterOptions (MediaPipe's image_segmenter_metadata_schema.fbs) are from
# metadata_schema.fbs.
TABLE_FIELDS = {
    "ModelMetadata": (
        "name",
        "description",
        "version",
        "subgraph_metadata",
        "author",
        "license",
        "associated_files",
        "min_parser_version",
    ),
    "SubGraphMetadata": (
        "name",
        "description",
        "input_tensor_metadata",
        "output_tensor_metadata",
        "associated_files",
        "input_process_units",
        "output_process_units",
        "input_tensor_groups",
        "output_tensor_groups",
        "custom_metadata",
    ),
    "TensorMetadata": ("name", "description", "dimension_names", "content", "process_units", "stats", "associated_files"),
    "Content": ("content_properties_type", "content_properties", "range"),
    "ImageProperties": ("color_space", "default_size"),
    "ProcessUnit": ("options_type", "options"),
    "NormalizationOptions": ("mean", "std"),
    "Stats": ("max", "min"),
    "AssociatedFile": ("name", "description", "type", "locale", "version"),
    "CustomMetadata": ("name", "data"),
    "ImageSegmenterOptions": ("activation", "min_parser_version"),
}
# Fields holding a one-byte enum value; every other field written here is an offset.
BYTE_FIELDS = {"content_properties_type", "color_space", "options_type", "type", "activation"}
# Enum values; a union's member types count from 1 (0 is none).
IMAGE_PROPERTIES = 2  # ContentProperties: FeatureProperties, ImageProperties, ...
NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions: NormalizationOptions, ...
RGB, GRAYSCALE = 1, 2
TENSOR_AXIS_LABELS = 2
ACTIVATION_NONE = 0
MODEL_METADATA_IDENTIFIER, SEGMENTER_OPTIONS_IDENTIFIER = b"M001", b"V001"
SEGMENTER_OPTIONS_NAME = "SEGMENTER_METADATA"
# CustomMetadata.data is declared `force_align: 16`.
CUSTOM_DATA_ALIGNMENT = 16


@dataclass(frozen=True)
class StandardMetadata:
    """What a model's standard metadata tells a reader: class names by id, and the normalization of
    its input, (pixel - mean) / std (one value for all channels, or one per channel)."""

    class_names: list[str]
    mean: list[float]
    std: list[float]


def embed_standard_metadata(model: bytes, class_names: Sequence[str], version: str) -> bytes:
    """A copy of `model` with standard metadata naming `class_names` (by id) and the model's
    `version` (what identifies it, such as its recipe hash). Standard metadata already there is
    replaced, named entries (`edgeseg.tflite_metadata`) are kept, predictions are unchanged.

    Raises ModelError for a model MediaPipe's ImageSegmenter would misread. The labels file follows
    the flatbuffer, and rewriting the model (`embed_metadata`) drops it: call this last.
    """
    _check_segmenter_reads(model, len(class_names))
    tagged = embed_metadata(model, {METADATA_ENTRY: _model_metadata(version)})
    return _with_files_appended(tagged, {LABELS_FILE: ("\n".join(class_names) + "\n").encode()})


def read_standard_metadata(model: bytes) -> StandardMetadata:
    """The class names and input normalization in `model`'s standard metadata, found as MediaPipe
    finds them: the labels are the output's TENSOR_AXIS_LABELS file, from the appended archive."""
    entry = read_metadata(model).get(METADATA_ENTRY)
    if entry is None or not flatbuffers.util.BufferHasIdentifier(entry, 0, MODEL_METADATA_IDENTIFIER):
        raise ModelError(
            f"expected standard metadata (a {METADATA_ENTRY} entry). Received: entries {sorted(read_metadata(model))}"
        )
    root = _Table("ModelMetadata", entry, flatbuffers.encode.Get(flatbuffers.packer.uoffset, entry, 0))
    subgraph = root.tables("subgraph_metadata", "SubGraphMetadata")[0]
    image = subgraph.tables("input_tensor_metadata", "TensorMetadata")[0]
    scores = subgraph.tables("output_tensor_metadata", "TensorMetadata")[0]
    units = image.tables("process_units", "ProcessUnit")
    normalizations = [
        unit.table("options", "NormalizationOptions") for unit in units if unit.byte("options_type") == NORMALIZATION_OPTIONS
    ]
    files = scores.tables("associated_files", "AssociatedFile")
    labels_files = [file.string("name") for file in files if file.byte("type") == TENSOR_AXIS_LABELS]
    packed = _packed_files(model)
    if not normalizations or not labels_files or labels_files[0] not in packed:
        raise ModelError(
            "expected standard metadata with the input's normalization and the output's labels file, packed. "
            f"Received: {len(normalizations)} normalizations, labels files {labels_files}, packed files {sorted(packed)}"
        )
    normalization = normalizations[0]
    class_names = packed[labels_files[0]].decode().splitlines()
    return StandardMetadata(class_names, normalization.floats("mean"), normalization.floats("std"))


def _check_segmenter_reads(model: bytes, class_count: int) -> None:
    """Raises ModelError unless the model takes pixels as they are and outputs one score per class."""
    segmenter = TFLiteSegmenter(model)
    shape = [int(d) for d in segmenter.output["shape"]]
    output = f"output {shape} {np.dtype(segmenter.output['dtype']).name}"
    if segmenter.outputs_labels:
        raise ModelError(
            "standard TFLite metadata: expected logits [1, H, W, C]; MediaPipe's ImageSegmenter reads class ids as "
            f"scores and gives wrong masks. Received: {output} (class ids)"
        )
    if len(shape) != 4 or shape[-1] != class_count:
        raise ModelError(
            f"standard TFLite metadata: expected logits [1, H, W, {class_count}], one per class name. Received: {output}"
        )
    input_dtype = np.dtype(segmenter.input["dtype"])
    if not (input_dtype == np.float32 or (input_dtype == np.uint8 and segmenter.input_quantization == (1.0, 0))):
        scale, zero_point = segmenter.input_quantization
        raise ModelError(
            "standard TFLite metadata: expected an input taking pixels as they are (float32, or uint8 with scale 1 and "
            f"zero point 0). Received: {input_dtype.name} input with scale {scale} and zero point {zero_point}"
        )


def _model_metadata(version: str) -> bytes:
    """The ModelMetadata flatbuffer of a segmenter: an RGB image in, logits with labels.txt out."""
    builder = flatbuffers.Builder(1024)
    text = builder.CreateString
    normalization = _table(
        builder, "NormalizationOptions", mean=_floats(builder, [PIXEL_MEAN]), std=_floats(builder, [PIXEL_STD])
    )
    image = _table(
        builder,
        "TensorMetadata",
        name=text("image"),
        description=text("RGB image stretched to the input size, its pixel values 0..255 as they are (the model normalizes)."),
        content=_image_content(builder, RGB),
        process_units=_tables(
            builder, [_table(builder, "ProcessUnit", options_type=NORMALIZATION_OPTIONS, options=normalization)]
        ),
        stats=_table(builder, "Stats", max=_floats(builder, [PIXEL_MAX]), min=_floats(builder, [PIXEL_MIN])),
    )
    labels = _table(
        builder,
        "AssociatedFile",
        name=text(LABELS_FILE),
        description=text("Class names, one per line, by class id."),
        type=TENSOR_AXIS_LABELS,
    )
    scores = _table(
        builder,
        "TensorMetadata",
        name=text("logits"),
        description=text("One score per pixel and class (no activation); argmax over the last axis gives class ids."),
        content=_image_content(builder, GRAYSCALE),
        associated_files=_tables(builder, [labels]),
    )
    segmenter_options = _table(
        builder,
        "CustomMetadata",
        name=text(SEGMENTER_OPTIONS_NAME),
        data=_aligned_bytes(builder, _segmenter_options(), CUSTOM_DATA_ALIGNMENT),
    )
    subgraph = _table(
        builder,
        "SubGraphMetadata",
        input_tensor_metadata=_tables(builder, [image]),
        output_tensor_metadata=_tables(builder, [scores]),
        custom_metadata=_tables(builder, [segmenter_options]),
    )
    root = _table(
        builder,
        "ModelMetadata",
        name=text("edgeseg segmenter"),
        description=text("Semantic segmentation exported by edgeseg; its edgeseg.json metadata entry is the complete contract."),
        version=text(version),
        subgraph_metadata=_tables(builder, [subgraph]),
        min_parser_version=text(MIN_PARSER_VERSION),
    )
    builder.Finish(root, file_identifier=MODEL_METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _segmenter_options() -> bytes:
    """MediaPipe's ImageSegmenterOptions flatbuffer: activation none, since the output is logits.
    Without it MediaPipe warns that the model's metadata names no activation."""
    builder = flatbuffers.Builder(64)
    builder.Finish(
        _table(builder, "ImageSegmenterOptions", activation=ACTIVATION_NONE), file_identifier=SEGMENTER_OPTIONS_IDENTIFIER
    )
    return bytes(builder.Output())


def _image_content(builder, color_space: int) -> int:
    properties = _table(builder, "ImageProperties", color_space=color_space)
    return _table(builder, "Content", content_properties_type=IMAGE_PROPERTIES, content_properties=properties)


def _table(builder, kind: str, **fields: int) -> int:
    """Writes a `kind` table: each field an offset of what `builder` already holds, or a BYTE_FIELDS value."""
    slots = TABLE_FIELDS[kind]
    builder.StartObject(len(slots))
    for field, value in fields.items():
        if field in BYTE_FIELDS:
            builder.PrependUint8Slot(slots.index(field), value, 0)
        else:
            builder.PrependUOffsetTRelativeSlot(slots.index(field), value, 0)
    return builder.EndObject()


def _tables(builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _floats(builder, values: list[float]) -> int:
    return builder.CreateNumpyVector(np.asarray(values, np.float32))


def _aligned_bytes(builder, content: bytes, alignment: int) -> int:
    builder.StartVector(1, len(content), alignment)
    for byte in reversed(content):
        builder.PrependUint8(byte)
    return builder.EndVector()


def _with_files_appended(model: bytes, files: dict[str, bytes]) -> bytes:
    """`model` followed by a zip archive of `files`, stored uncompressed (MediaPipe reads them in place)."""
    archive = io.BytesIO(model)
    archive.seek(0, io.SEEK_END)
    # Mode "a" on bytes that are no archive appends one, its offsets counted from the file's start.
    with zipfile.ZipFile(archive, "a") as packed:
        for name, content in files.items():
            packed.writestr(zipfile.ZipInfo(name, date_time=PACKED_FILE_DATE), content)
    return archive.getvalue()


def _packed_files(model: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as packed:
            return {name: packed.read(name) for name in packed.namelist()}
    except zipfile.BadZipFile:
        return {}


class _Table:
    """A table of a metadata flatbuffer, its fields read by name (TABLE_FIELDS); absent fields read as empty, except a table."""

    def __init__(self, kind: str, buffer: bytes, position: int):
        self.kind, self._table = kind, Table(buffer, position)

    def byte(self, field: str) -> int:
        offset = self._offset(field)
        return self._table.Get(flatbuffers.number_types.Uint8Flags, self._table.Pos + offset) if offset else 0

    def string(self, field: str) -> str | None:
        offset = self._offset(field)
        return self._table.String(self._table.Pos + offset).decode() if offset else None

    def floats(self, field: str) -> list[float]:
        offset = self._offset(field)
        return self._table.GetVectorAsNumpy(flatbuffers.number_types.Float32Flags, offset).tolist() if offset else []

    def table(self, field: str, kind: str) -> "_Table":
        offset = self._offset(field)
        if not offset:
            raise ModelError(f"standard metadata: expected a {kind} as {self.kind}.{field}. Received: none")
        return _Table(kind, self._table.Bytes, self._table.Indirect(self._table.Pos + offset))

    def tables(self, field: str, kind: str) -> list["_Table"]:
        offset = self._offset(field)
        if not offset:
            return []
        start = self._table.Vector(offset)
        return [
            _Table(kind, self._table.Bytes, self._table.Indirect(start + 4 * i)) for i in range(self._table.VectorLen(offset))
        ]

    def _offset(self, field: str) -> int:
        """Where `field` is stored from the table's start, or 0 if absent. A table's vtable holds its
        own size and the table's, then one offset per field, each 2 bytes."""
        return self._table.Offset(4 + 2 * TABLE_FIELDS[self.kind].index(field))
