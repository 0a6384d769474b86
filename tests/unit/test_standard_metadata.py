"""Standard TFLite metadata: written onto int8 and float32 segmenters without changing their
predictions or edgeseg's own entries, read back, refused for a class-id output, replaced on a rewrite."""

import io
import zipfile

import numpy as np
import pytest

from edgeseg._keras import keras
from edgeseg.errors import ModelError
from edgeseg.models.labels import labels_model
from edgeseg.quantization.converters import calibration_images, convert_float, convert_int8
from edgeseg.standard_metadata import StandardMetadata, embed_standard_metadata, read_standard_metadata
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_metadata import embed_metadata, read_metadata

CLASS_NAMES = ["background", "sky", "road", "person"]
EDGESEG_ENTRIES = {"edgeseg.json": b'{"format": "edgeseg/1"}\n', "labels.txt": ("\n".join(CLASS_NAMES) + "\n").encode()}


@pytest.fixture(scope="module")
def logits_model():
    """Normalization inside, as every edgeseg model has it, then two convolutions to 4 classes' logits."""
    keras.utils.set_random_seed(0)
    image = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(image)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(x)
    return keras.Model(image, keras.layers.Conv2D(len(CLASS_NAMES), 1, name="logits")(x))


@pytest.fixture(scope="module")
def images():
    return calibration_images(np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), 8, seed=0)


@pytest.fixture(scope="module")
def exported_models(logits_model, images):
    """int8 (uint8 input) and float32 files carrying edgeseg's own entries, as `write_export` embeds them."""
    return {
        "int8": embed_metadata(convert_int8(logits_model, images), EDGESEG_ENTRIES),
        "float32": embed_metadata(convert_float(logits_model), EDGESEG_ENTRIES),
    }


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_written_model_predicts_the_same_keeps_edgeseg_entries_and_reads_back(exported_models, images, mode):
    model = exported_models[mode]
    written = embed_standard_metadata(model, CLASS_NAMES, version="recipe-hash")

    before, after = TFLiteSegmenter(model), TFLiteSegmenter(written)
    for image in images:
        np.testing.assert_array_equal(after.predict_raw(image), before.predict_raw(image))
    embedded = read_metadata(written)
    assert {name: embedded[name] for name in EDGESEG_ENTRIES} == EDGESEG_ENTRIES
    assert read_standard_metadata(written) == StandardMetadata(CLASS_NAMES, mean=[0.0], std=[1.0])
    assert embed_standard_metadata(model, CLASS_NAMES, version="recipe-hash") == written, "not the same bytes every time"


def test_writing_again_replaces_the_labels_file(exported_models):
    renamed = ["void", "sky", "road", "person"]
    once = embed_standard_metadata(exported_models["int8"], CLASS_NAMES, version="1")
    twice = embed_standard_metadata(once, renamed, version="2")

    assert zipfile.ZipFile(io.BytesIO(twice)).namelist() == ["labels.txt"]
    assert read_standard_metadata(twice).class_names == renamed
    assert read_metadata(twice).keys() == read_metadata(once).keys()


def test_a_class_id_output_is_refused_in_one_line(logits_model, images):
    class_ids = convert_int8(labels_model(logits_model), images)
    with pytest.raises(ModelError, match=r"Received: output \[1, 32, 32\] uint8 \(class ids\)") as raised:
        embed_standard_metadata(class_ids, CLASS_NAMES, version="1")
    assert "\n" not in str(raised.value)


def test_a_class_name_per_logit_is_required(exported_models):
    with pytest.raises(ModelError, match=r"expected logits \[1, H, W, 3\].*Received: output \[1, 32, 32, 4\] int8"):
        embed_standard_metadata(exported_models["int8"], CLASS_NAMES[:3], version="1")


def test_reading_a_model_without_standard_metadata_names_what_it_has(exported_models):
    with pytest.raises(ModelError, match=r"expected standard metadata.*'edgeseg.json'"):
        read_standard_metadata(exported_models["int8"])
