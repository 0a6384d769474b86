"""The Android demo reads edgeseg.json as the contract says, copies of exports are checked, and its
Gradle project is complete. Nothing here builds the app: these machines have no Android SDK."""

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest

from edgeseg import contract
from edgeseg.contract import DESCRIPTION_FILE, MODEL_FILE
from edgeseg.demo.android import (
    APP_ASSETS,
    APP_CONTRACT_SOURCE,
    android_constants,
    android_contract_keys,
    android_tensor_types,
    app_allowed_values,
    copy_export_to_app,
)
from edgeseg.errors import ModelError
from edgeseg.tflite import INTEGER_TYPES
from tests.helpers import ANDROID_APP, REPO, android_app_copy

APP = ANDROID_APP
KOTLIN_SOURCES = APP / "app/src/main/java"
SEGMENTER_SOURCE = KOTLIN_SOURCES / "dev/edgeseg/demo/Segmenter.kt"
ANDROID_NAMESPACE = "{http://schemas.android.com/apk/res/android}"

# Required fields the app does not read, and why; it must read every other one.
NOT_READ_BY_APP = {
    "model": "the app always loads assets/model.tflite, the name copy_export_to_app gives it",
    "ignore_index": "the argmax over logits never yields it",
}
PROJECT_FILES = [
    ".gitignore",
    "README.md",
    "settings.gradle.kts",
    "build.gradle.kts",
    "gradle.properties",
    "gradle/wrapper/gradle-wrapper.properties",
    "app/build.gradle.kts",
    "app/src/main/AndroidManifest.xml",
    "app/src/main/res/layout/activity_main.xml",
    "app/src/main/res/values/strings.xml",
    "app/src/main/java/dev/edgeseg/demo/MainActivity.kt",
    "app/src/main/java/dev/edgeseg/demo/Segmenter.kt",
    "app/src/main/java/dev/edgeseg/demo/ModelContract.kt",
    "app/src/main/java/dev/edgeseg/demo/OverlayView.kt",
]


def project_files() -> list[Path]:
    """The project's own files: not what a build, Android Studio or a copied export left in it."""
    generated = {"build", ".gradle", ".idea", ".kotlin", "assets"}
    return [path for path in APP.rglob("*") if path.is_file() and not generated & set(path.relative_to(APP).parts)]


def kotlin_contract() -> str:
    return (APP / APP_CONTRACT_SOURCE).read_text()


def export_description(run_dir: Path) -> dict:
    return json.loads((run_dir / DESCRIPTION_FILE).read_text())


def values_at(node, dotted: str) -> list:
    """Every value `dotted` names in `node`, `[]` fanning out over an array; empty if any step is missing."""
    nodes = [node]
    for part in dotted.split("."):
        key, fans_out = part.removesuffix("[]"), part.endswith("[]")
        found = []
        for parent in nodes:
            if not isinstance(parent, dict) or key not in parent or (fans_out and not isinstance(parent[key], list)):
                return []
            found.extend(parent[key] if fans_out else [parent[key]])
        nodes = found
    return nodes


def broken_export(run_dir: Path, tmp_path: Path, breaks) -> Path:
    """A copy of the run folder whose edgeseg.json `breaks(description)` has changed in place."""
    export = shutil.copytree(run_dir, tmp_path / "export")
    description = export_description(export)
    breaks(description)
    (export / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2))
    return export


# ----------------------------------------------------------------------------- the keys the app reads


def test_every_key_the_app_reads_is_in_a_real_export_and_in_the_contract(tiny_export):
    keys = android_contract_keys(kotlin_contract())
    assert len(keys) >= 15, f"the parser found too few keys to mean anything: {sorted(keys)}"
    description = export_description(tiny_export)
    assert [key for key in sorted(keys) if not values_at(description, key)] == []

    required = set(contract.REQUIRED_FIELDS)
    read = {key.replace("[]", "") for key in keys}

    def covered(key: str) -> bool:  # required, inside a required field, or an object holding one
        parts = key.split(".")
        ancestors = {".".join(parts[:end]) for end in range(1, len(parts) + 1)}
        return bool(ancestors & required) or any(field.startswith(key + ".") for field in required)

    assert sorted(key for key in read if not covered(key)) == []
    assert required - read == set(NOT_READ_BY_APP)


def test_the_key_parser_follows_variables_and_arrays_and_skips_comments():
    source = """
        val json = JSONObject(text)
        // json.getInt("in_a_comment")
        val output = json.getJSONObject("output")
        val classes = output.getJSONArray("classes")
        val first = classes.getJSONObject(0).getString("name")
        val message = "json.getInt(\\"in_a_string\\")"
    """
    assert android_contract_keys(source) == {"output", "output.classes", "output.classes[].name"}


@pytest.mark.parametrize("read", ['JSONObject(text).getInt("height")', 'parsed().getString("format")'])
def test_the_key_parser_refuses_a_read_it_cannot_trace(read):
    with pytest.raises(ValueError, match=r"line 3: cannot trace which JSON object"):
        android_contract_keys(f"val json = JSONObject(text)\n\nval value = {read}\n")


# ----------------------------------------------------------------------------- copying an export


def test_copy_export_to_app_puts_the_model_and_its_description_in_the_assets(tiny_export, tmp_path):
    app = android_app_copy(tmp_path)
    copied = copy_export_to_app(tiny_export, app)
    assets = app / APP_ASSETS
    assert copied == [assets / MODEL_FILE, assets / DESCRIPTION_FILE]
    assert copied[0].read_bytes() == (tiny_export / "model.tflite").read_bytes()
    assert json.loads(copied[1].read_text()) == export_description(tiny_export)
    assert sorted(path.name for path in assets.iterdir()) == sorted([MODEL_FILE, DESCRIPTION_FILE])


def test_copy_export_to_app_reads_a_self_describing_tflite_alone(tiny_export, tmp_path):
    model = shutil.copy(tiny_export / "model.tflite", tmp_path / "segmenter.tflite")
    copied = copy_export_to_app(model, android_app_copy(tmp_path))
    assert json.loads(copied[1].read_text()) == export_description(tiny_export)


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (lambda d: d["output"].pop("dtype"), "edgeseg.json lacks output.dtype"),
        (lambda d: d["classes"][0].pop("name"), r"lacks classes\[\]\.name, which the Android app reads"),
        (
            lambda d: d["output"].update(dtype="int4"),
            r"handles uint8, int8, int16, float32 tensors\. Received: output.dtype='int4'",
        ),
        (
            lambda d: d["output"].update(kind="class_ids"),
            r"needs output.kind = 'logits' or 'labels'\. Received: output.kind='class_ids'",
        ),
        (lambda d: d["input"].update(color_order="BGR"), r"needs input.color_order = 'RGB'\. Received: input.color_order='BGR'"),
    ],
)
def test_copy_export_to_app_refuses_an_export_the_app_cannot_read(tiny_export, tmp_path, breaks, message):
    export = broken_export(tiny_export, tmp_path, breaks)
    app = android_app_copy(tmp_path)
    with pytest.raises(ModelError, match=rf"^{re.escape(str(export / DESCRIPTION_FILE))}: .*{message}") as raised:
        copy_export_to_app(export, app)
    assert "\n" not in str(raised.value)
    assert not (app / APP_ASSETS).exists()


def test_copy_export_to_app_refuses_a_folder_that_is_not_the_app(tiny_export, tmp_path):
    with pytest.raises(ModelError, match=rf"{re.escape(str(tmp_path))}: expected the Android demo project.*Received: "):
        copy_export_to_app(tiny_export, tmp_path)


def test_the_copy_tool_prints_what_it_copied_and_one_line_on_error(tiny_export, tmp_path):
    app = android_app_copy(tmp_path)
    tool = [sys.executable, str(REPO / "tools/copy_export_to_android.py")]
    copied = subprocess.run([*tool, str(tiny_export), "--app", str(app)], capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.splitlines() == [f"copied {app / APP_ASSETS / name}" for name in (MODEL_FILE, DESCRIPTION_FILE)]

    export = broken_export(tiny_export, tmp_path, lambda d: d["output"].pop("dtype"))
    refused = subprocess.run([*tool, str(export), "--app", str(app)], capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        f"copy_export_to_android: error: {export / DESCRIPTION_FILE}: edgeseg.json lacks output.dtype"
    ]


# ----------------------------------------------------------------------------- pre- and post-processing


def test_the_app_handles_every_tensor_type_edgeseg_runs_with_numpys_sizes_and_ranges(tiny_export):
    types = android_tensor_types(kotlin_contract())
    runner_types = {np.dtype(integer).name for integer in INTEGER_TYPES} | {"float32"}
    assert runner_types <= set(types), "edgeseg's TFLite runner feeds and reads types the app cannot"
    description = export_description(tiny_export)
    assert {description["input"]["dtype"], description["output"]["dtype"]} <= set(types)
    for name, app_type in types.items():
        dtype = np.dtype(name)
        assert app_type.bytes_per_element == dtype.itemsize, name
        if np.issubdtype(dtype, np.integer):
            assert app_type.integer_range == (np.iinfo(dtype).min, np.iinfo(dtype).max), name
        else:
            assert app_type.integer_range is None, name
    segmenter = SEGMENTER_SOURCE.read_text()
    for name in types:
        # An input writer, an output reader and the LiteRT DataType the model's tensors are checked against.
        assert segmenter.count(f"TensorType.{name.upper()}") >= 3, name


def test_the_app_requires_what_the_contract_and_a_real_export_say(tiny_export):
    constants = android_constants(kotlin_contract())
    assert constants["SUPPORTED_FORMAT"] == contract.FORMAT
    assert (constants["MODEL_ASSET"], constants["DESCRIPTION_ASSET"]) == (MODEL_FILE, DESCRIPTION_FILE)
    description = export_description(tiny_export)
    allowed = app_allowed_values(constants)
    assert allowed["output.kind"] == ["logits", "labels"]
    for key, values in allowed.items():
        assert len(values_at(description, key)) == 1 and values_at(description, key)[0] in values, key


def test_the_app_resizes_bilinearly_and_quantizes_like_edgesegs_runner(tiny_export):
    assert "bilinear" in export_description(tiny_export)["input"]["resize"]
    segmenter = SEGMENTER_SOURCE.read_text()
    # createScaledBitmap's filter flag is bilinear filtering; without it the resize is nearest-neighbour.
    assert re.search(r"Bitmap\.createScaledBitmap\([^()]*,\s*(?:filter\s*=\s*)?true\s*\)", segmenter)
    # edgeseg's runner quantizes an integer input with np.round, which rounds half to even:
    # Math.rint does the same, Math.round and roundToInt round half up.
    assert "Math.rint(" in segmenter
    assert "Math.round(" not in segmenter and "roundToInt" not in segmenter


# ----------------------------------------------------------------------------- the Gradle project


def test_the_gradle_project_has_every_file_and_no_binary():
    assert [name for name in PROJECT_FILES if not (APP / name).is_file()] == []
    assert re.search(r'include\(":app"\)', (APP / "settings.gradle.kts").read_text())
    wrapper = (APP / "gradle/wrapper/gradle-wrapper.properties").read_text()
    assert re.search(
        r"^distributionUrl=https\\://services\.gradle\.org/distributions/gradle-\d+\.\d+(\.\d+)?-(bin|all)\.zip$", wrapper, re.M
    )
    assert [path.name for path in project_files() if path.suffix in {".jar", ".apk", ".aar", ".tflite"}] == []


def test_the_manifest_declares_the_camera_permission_and_the_launcher_activity():
    manifest = ElementTree.parse(APP / "app/src/main/AndroidManifest.xml").getroot()
    permissions = {element.get(f"{ANDROID_NAMESPACE}name") for element in manifest.iter("uses-permission")}
    assert "android.permission.CAMERA" in permissions
    activities = {element.get(f"{ANDROID_NAMESPACE}name"): element for element in manifest.iter("activity")}
    assert set(activities) == {".MainActivity"}
    launcher = activities[".MainActivity"]
    assert launcher.get(f"{ANDROID_NAMESPACE}exported") == "true"
    assert {element.get(f"{ANDROID_NAMESPACE}name") for element in launcher.iter()} >= {
        "android.intent.action.MAIN",
        "android.intent.category.LAUNCHER",
    }
    assert re.search(r"^class MainActivity\b", (KOTLIN_SOURCES / "dev/edgeseg/demo/MainActivity.kt").read_text(), re.M)


def test_the_app_build_declares_litert_camerax_and_an_uncompressed_model():
    build = (APP / "app/build.gradle.kts").read_text()
    for artifact in ("litert", "litert-gpu", "litert-gpu-api"):
        assert re.search(rf'implementation\("com\.google\.ai\.edge\.litert:{artifact}:[^"]+"\)', build), artifact
    for artifact in ("camera-camera2", "camera-lifecycle", "camera-view"):
        assert re.search(rf'implementation\("androidx\.camera:{artifact}:[^"]+"\)', build), artifact
    assert re.search(r'noCompress\s*\+=\s*"tflite"', build)
    assert re.search(r"compileSdk = 35\b", build) and re.search(r"minSdk = 24\b", build)


def test_every_kotlin_file_is_in_the_folder_of_its_package_and_the_namespace_holds_r():
    sources = sorted(KOTLIN_SOURCES.rglob("*.kt"))
    assert len(sources) >= 4
    for source in sources:
        package = re.search(r"^package ([\w.]+)$", source.read_text(), re.M)
        assert package, f"{source.name} declares no package"
        assert source.parent.relative_to(KOTLIN_SOURCES) == Path(*package.group(1).split(".")), source.name
    # MainActivity uses R without an import, so R's package (the namespace) must be its package.
    namespace = re.search(r'namespace = "([\w.]+)"', (APP / "app/build.gradle.kts").read_text()).group(1)
    assert namespace == "dev.edgeseg.demo"


def test_every_resource_and_view_class_the_app_names_is_declared():
    kotlin = "\n".join(source.read_text() for source in KOTLIN_SOURCES.rglob("*.kt"))
    resources = APP / "app/src/main/res"
    layouts = {path.stem: path.read_text() for path in (resources / "layout").glob("*.xml")}
    strings = {element.get("name") for element in ElementTree.parse(resources / "values/strings.xml").getroot()}
    declared_ids = {name for text in layouts.values() for name in re.findall(r'"@\+id/(\w+)"', text)}
    named_strings = set(re.findall(r"\bR\.string\.(\w+)", kotlin))
    for text in [*layouts.values(), (APP / "app/src/main/AndroidManifest.xml").read_text()]:
        named_strings |= set(re.findall(r'"@string/(\w+)"', text))

    assert set(re.findall(r"\bR\.id\.(\w+)", kotlin)) - declared_ids == set()
    assert set(re.findall(r"\bR\.layout\.(\w+)", kotlin)) - set(layouts) == set()
    assert named_strings - strings == set()
    for text in layouts.values():
        for view_class in re.findall(r"<(dev\.edgeseg\.demo\.\w+)", text):
            assert re.search(rf"^class {view_class.rsplit('.', 1)[1]}\b", kotlin, re.M), view_class


def test_the_project_has_no_placeholders():
    placeholders = [path for path in project_files() if re.search(r"\b(TODO|FIXME|XXX)\b", path.read_text())]
    assert [str(path.relative_to(APP)) for path in placeholders] == []
