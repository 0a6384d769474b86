"""The web demo's server: what it serves, with which types, and its one-line errors. No browser."""

import json
import threading
import urllib.error
import urllib.request

import pytest

from edgeseg.demo import web
from edgeseg.errors import EdgesegError

DESCRIPTION = {
    "format": "edgeseg/1",
    "model": "model.tflite",
    "input": {
        "height": 32,
        "width": 32,
        "channels": 3,
        "color_order": "RGB",
        "dtype": "uint8",
        "quantization": {"scale": 1.0, "zero_point": 0},
    },
    "output": {"kind": "logits", "shape": [1, 32, 32, 4], "dtype": "int8", "quantization": {"scale": 0.05, "zero_point": -3}},
    "classes": [{"id": i, "name": f"class{i}", "color": [i, i, i]} for i in range(4)],
    "ignore_index": 255,
}
MODEL_BYTES = b"TFL3 stand-in: the server never parses the model"


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.tflite").write_bytes(MODEL_BYTES)
    (run / "edgeseg.json").write_text(json.dumps(DESCRIPTION))
    return run


@pytest.fixture
def web_dir(tmp_path, monkeypatch):
    """A stand-in for edgeseg/demo/web with the LiteRT.js files the page loads, and some it must not serve."""
    root = tmp_path / "web"
    files = {
        "index.html": "<!doctype html>",
        "app.js": "export {};",
        "package.json": "{}",
        "node_modules/@litertjs/core/dist/index.js": "export {};",
        "node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm": "\0asm",
        "node_modules/@litertjs/core/package.json": "{}",
    }
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    monkeypatch.setattr(web, "WEB_DIR", root)
    monkeypatch.setattr(web, "LITERT_PACKAGE_DIR", root / "node_modules/@litertjs/core")
    return root


@pytest.fixture
def base_url(run_dir, web_dir):
    server = web.make_server(run_dir, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read()


def test_serves_the_page_the_export_and_litert_with_their_types(base_url):
    assert get(f"{base_url}/")[0].startswith("text/html")
    assert get(f"{base_url}/app.js")[0].startswith("text/javascript")
    assert get(f"{base_url}/model.tflite") == ("application/octet-stream", MODEL_BYTES)
    content_type, body = get(f"{base_url}/edgeseg.json")
    assert content_type == "application/json" and json.loads(body) == DESCRIPTION
    assert get(f"{base_url}/node_modules/@litertjs/core/dist/index.js")[0].startswith("text/javascript")
    assert get(f"{base_url}/node_modules/@litertjs/core/wasm/litert_wasm_internal.wasm")[0] == "application/wasm"


@pytest.mark.parametrize(
    "path",
    [
        "/package.json",
        "/node_modules/@litertjs/core/package.json",
        "/node_modules/@litertjs/core/dist/../package.json",
        "/node_modules/@litertjs/core/dist/%2E%2E/package.json",
    ],
)
def test_serves_nothing_else(base_url, path):
    with pytest.raises(urllib.error.HTTPError) as error:
        get(base_url + path)
    assert error.value.code == 404


def test_without_litert_it_says_what_to_run(run_dir, web_dir, monkeypatch):
    monkeypatch.setattr(web, "LITERT_PACKAGE_DIR", web_dir / "missing")
    with pytest.raises(EdgesegError, match=f"run: npm ci --prefix {web_dir}$"):
        web.make_server(run_dir, port=0)


def test_a_busy_port_is_one_line(run_dir, web_dir):
    first = web.make_server(run_dir, port=0)
    try:
        with pytest.raises(EdgesegError, match="cannot listen on 127.0.0.1:.*choose another port"):
            web.make_server(run_dir, port=first.server_address[1])
    finally:
        first.server_close()
