"""The browser live-camera demo: a static page that runs an export's `model.tflite` with LiteRT.js.

The page (`edgeseg/demo/web/`) reads `edgeseg.json`, opens the camera with getUserMedia and applies
the contract of `edgeseg.contract` to each frame. This module serves it, the export and the
LiteRT.js runtime (`@litertjs/core` from npm, installed once with `npm ci`) from one local origin,
so nothing is fetched from the internet at run time.

Example::

    server = make_server("runs/quickstart", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
"""

import contextlib
import json
import posixpath
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from edgeseg.contract import DESCRIPTION_FILE, MODEL_FILE, Export, load_export
from edgeseg.errors import EdgesegError

WEB_DIR = Path(__file__).resolve().parent / "web"
LITERT_PACKAGE_DIR = WEB_DIR / "node_modules" / "@litertjs" / "core"
# The only files the page needs from node_modules; everything else there stays unserved.
SERVED_PACKAGE_PREFIXES = (
    "/node_modules/@litertjs/core/dist/",
    "/node_modules/@litertjs/core/wasm/",
    "/node_modules/@litertjs/wasm-utils/dist/",
)
PAGE_FILES = ("/index.html", "/app.js", "/segmenter.js")


class DemoServer(ThreadingHTTPServer):
    """The HTTP server of one export's demo page; `export` is what it serves."""

    daemon_threads = True

    def __init__(self, export: Export, address: tuple[str, int]):
        self.export = export
        super().__init__(address, DemoRequestHandler)


class DemoRequestHandler(SimpleHTTPRequestHandler):
    """Serves the page's files from WEB_DIR and the server's export at /model.tflite and /edgeseg.json."""

    server: DemoServer

    # Browsers only compile .wasm while it streams in when it is served as application/wasm,
    # and refuse ES modules served with a non-JavaScript type.
    extensions_map = {
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".wasm": "application/wasm",
        ".json": "application/json",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def do_GET(self):
        # Normalized first, so "/node_modules/@litertjs/core/dist/../package.json" is not let through.
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        self.path = path = "/index.html" if path == "/" else path
        if path == f"/{MODEL_FILE}":
            self.send_bytes(self.server.export.model_path.read_bytes(), "application/octet-stream")
        elif path == f"/{DESCRIPTION_FILE}":
            self.send_bytes(json.dumps(self.server.export.description).encode(), "application/json")
        elif path in PAGE_FILES or path.startswith(SERVED_PACKAGE_PREFIXES):
            super().do_GET()
        else:
            self.send_error(HTTPStatus.NOT_FOUND)

    def do_HEAD(self):
        # The inherited HEAD would answer for any file under web/; the page never needs it.
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)

    def send_bytes(self, content: bytes, content_type: str):
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def end_headers(self):
        # A re-exported model or edited page must reach an open tab on reload; the runtime files
        # are pinned by package-lock.json and may be cached.
        if not self.path.startswith("/node_modules/"):
            self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):
        """Requests are not logged: the page fetches a dozen files and then only talks to the camera."""


def make_server(export_path: str | Path, host: str = "127.0.0.1", port: int = 8000) -> DemoServer:
    """An HTTP server for the demo page of the export at `export_path` (run folder or .tflite).

    `port=0` picks a free port; read it from `server.server_address[1]`. The server is not started.

    Example::

        server = make_server("runs/quickstart", port=0)
        server.serve_forever()
    """
    export = load_export(export_path)
    if not LITERT_PACKAGE_DIR.is_dir():
        raise EdgesegError(f"the web demo needs LiteRT.js, not installed in {WEB_DIR}; run: npm ci --prefix {WEB_DIR}")
    try:
        return DemoServer(export, (host, port))
    except OSError as error:
        raise EdgesegError(f"cannot listen on {host}:{port} ({error.strerror}); choose another port") from None


def serve(export_path: str | Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serves the demo page of the export at `export_path`, prints its URL and runs until Ctrl-C.

    Example::

        serve("runs/quickstart")  # then open http://127.0.0.1:8000/
    """
    server = make_server(export_path, host, port)
    bound_host, bound_port = server.server_address[:2]
    print(f"web demo of {server.export.model_path} at http://{str(bound_host)}:{bound_port}/ (Ctrl-C stops)")
    # Ctrl-C is the normal way to stop it, not an interruption of work.
    with server, contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
