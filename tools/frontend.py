"""ComfyUI's own web frontend, as a user's browser runs it: headless Chromium from Debian's
packages, driven over the Chrome DevTools Protocol (CDP).

The frontend is the one the host ships (pip `comfyui_frontend_package`, served by main.py at
"/"), so loading a workflow here goes through the same code as opening the file in the editor:
`app.loadGraphData(workflow)` creates every node from the server's /object_info and puts the
file's `widgets_values` into the widgets it made. :func:`graph_problems` compares what landed
with what the file meant.

The CDP client is a few lines over aiohttp (a ComfyUI dependency, so nothing else to install);
scripts/setup_env.sh installs the browser (`apt-get install chromium-headless-shell`).
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from .comfy_host import PACK_ROOT, LoggedProcess
from .comfy_workflow import FRONTEND_ONLY, widget_slots

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")
# Written by scripts/setup_env.sh when the browser could not be installed (its reason inside).
UNAVAILABLE_NOTE = PACK_ROOT / ".venv" / ".chromium-unavailable"


class BrowserError(AssertionError):
    """The browser or the page failed; the message carries the page's own error text."""


def find_browser() -> str | None:
    """Path of an installed headless-capable Chromium, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_unavailable_reason() -> str | None:
    """Why setup could not install the browser, if it recorded a reason."""
    try:
        return UNAVAILABLE_NOTE.read_text().strip() or "no reason recorded"
    except OSError:
        return None


class HeadlessChromium(LoggedProcess):
    """One headless Chromium process with one page, driven over CDP (synchronous calls)."""

    log_name = "chromium log"

    def __init__(self, work_dir: Path, binary: str | None = None, timeout: float = 60.0):
        self.work_dir = Path(work_dir)
        self.binary = binary or find_browser()
        if self.binary is None:
            raise BrowserError(f"no Chromium found (looked for {', '.join(BROWSERS)})")
        self.timeout = timeout
        self.log_path = self.work_dir / "chromium.log"
        self.console: list[str] = []  # the page's console errors and uncaught exceptions
        self._loop = asyncio.new_event_loop()
        self._session = None
        self._socket = None
        self._next_id = 0

    def start(self):
        profile = self.work_dir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        # --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start.
        cmd = [self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
               "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
               f"--user-data-dir={profile}", "--window-size=1600,1000", "about:blank"]
        self.launch(cmd)
        try:
            self._loop.run_until_complete(self._connect(profile / "DevToolsActivePort"))
            self.call("Runtime.enable")
            self.call("Page.enable")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
            self._session = None
        super().stop()
        if not self._loop.is_closed():
            self._loop.close()

    async def _connect(self, port_file: Path):
        import aiohttp

        deadline = time.monotonic() + self.timeout
        while not port_file.is_file() or len(port_file.read_text().split()) < 2:
            if self.process.poll() is not None:
                raise BrowserError(f"Chromium exited with code {self.process.returncode}.\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BrowserError(f"Chromium did not open its DevTools port.\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as reply:
            targets = await reply.json(content_type=None)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise BrowserError(f"Chromium has no page to drive: {targets}")
        self._socket = await self._session.ws_connect(pages[0]["webSocketDebuggerUrl"],
                                                      max_msg_size=0)

    async def _call(self, method: str, params: dict, timeout: float) -> dict:
        self._next_id += 1
        call_id = self._next_id
        await self._socket.send_json({"id": call_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer to {method} within {timeout:.0f} s")
            message = await self._socket.receive_json(timeout=left)
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self._note_event(message)

    def _note_event(self, message: dict):
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console.append(f"uncaught: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console.append("console.error: " + " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))

    def call(self, method: str, timeout: float | None = None, **params) -> dict:
        """One CDP command; returns its result."""
        return self._loop.run_until_complete(
            self._call(method, params, timeout or self.timeout))

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluate JavaScript in the page (promises are awaited); returns its JSON value."""
        result = self.call("Runtime.evaluate", timeout=timeout, expression=expression,
                           awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result.get("result", {}).get("value")

    def open(self, url: str, ready: str, timeout: float = 180.0):
        """Navigate to `url` and wait until the JavaScript expression `ready` is true."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(f"Boolean({ready})"):
                    return
            except BrowserError as err:  # e.g. the context went away while the page loads
                self.console.append(f"while waiting: {err}")
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} not ready after {timeout:.0f} s ({ready}).\n"
                                   + "\n".join(self.console[-20:]) + "\n" + self.log_tail())
            time.sleep(0.5)


# -- ComfyUI's editor ---------------------------------------------------------------------------

# The editor is ready once it has registered the server's node definitions (ours among them).
EDITOR_READY = ("window.app && window.app.graph && window.LiteGraph && "
                "window.LiteGraph.registered_node_types['FitNeuralAtlas']")

# Loads a workflow like opening its file, then reports every node as the editor holds it.
_LOAD_AND_DESCRIBE = """(async () => {
  await window.app.loadGraphData(%s);
  const graph = window.app.graph;
  const nodes = graph.nodes ?? graph._nodes;
  return nodes.map(n => ({
    id: n.id,
    type: n.type,
    registered: Boolean(window.LiteGraph.registered_node_types[n.type]),
    has_errors: Boolean(n.has_errors),
    widgets: (n.widgets ?? []).map(w => ({name: w.name, value: w.value ?? null})),
    widgets_values: n.serialize().widgets_values ?? [],
  }));
})()"""


def open_editor(browser: HeadlessChromium, server_url: str) -> None:
    browser.open(server_url + "/", EDITOR_READY)


def load_workflow(browser: HeadlessChromium, workflow: dict) -> list[dict]:
    """Load a UI-format workflow into the open editor; the nodes as it shows them."""
    return browser.evaluate(_LOAD_AND_DESCRIBE % json.dumps(workflow), timeout=120)


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    return a == b


# A combo value that names a model file the user puts in place (a SAM checkpoint, say) need not
# be among the files this server happens to have.
MODEL_FILES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


def misfit(spec, value) -> str | None:
    """Why `value` cannot be the value of a widget input declared as `spec` (None: it can)."""
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    choices = kind if isinstance(kind, list) else options.get("options")
    if kind == "COMBO" or isinstance(kind, list):
        if value in (choices or []):
            return None
        if isinstance(value, str) and value.lower().endswith(MODEL_FILES):
            return None
        return f"{value!r} is not one of its options {choices}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{value!r} is not a number"
        if kind == "INT" and value != int(value):
            return f"{value!r} is not an integer"
        low, high = options.get("min"), options.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{value!r} is outside {low}..{high}"
    return None


def graph_problems(workflow: dict, shown: list[dict], definitions: dict[str, dict]) -> list[str]:
    """What went wrong loading `workflow` into the editor, one line each (empty: nothing).

    shown: :func:`load_workflow`'s answer; definitions: the server's /object_info. Problems: a
    node type the editor does not know; a node the editor marks in error; a file value that
    cannot belong to the widget the definition puts at its place (wrong type, out of range,
    not an option: the values were saved for another widget order); an editor widget that
    shows another value than the one the definition's order gives it (the editor and the
    API conversion CI runs, tools/comfy_workflow.py, disagree); an editor that would save
    other widget values than the file has.
    """
    problems = []
    by_id = {node["id"]: node for node in shown}
    for node in workflow["nodes"]:
        label = f"node {node['id']} ({node['type']})"
        got = by_id.get(node["id"])
        if got is None:
            problems.append(f"{label}: not in the editor's graph")
            continue
        if node["type"] not in FRONTEND_ONLY and not got["registered"]:
            problems.append(f"{label}: node type {node['type']!r} is missing in the editor")
            continue
        if got["has_errors"]:
            problems.append(f"{label}: the editor marks the node in error")
        values = list(node.get("widgets_values") or [])
        if node["type"] in definitions:
            slots = widget_slots(definitions[node["type"]])
            if len(slots) != len(values):
                problems.append(f"{label}: {len(values)} widget values for {len(slots)} "
                                f"widgets {[n or o['editor'] for n, o in slots]}")
            specs = {**definitions[node["type"]]["input"].get("required", {}),
                     **definitions[node["type"]]["input"].get("optional", {})}
            widgets = {w["name"]: w["value"] for w in got["widgets"]}
            for (name, _), value in zip(slots, values, strict=False):
                if name is None:
                    continue  # an editor-only value (control after generate, upload button)
                reason = misfit(specs[name], value)
                if reason is not None:
                    problems.append(f"{label}: widget {name!r} gets {reason}")
                if name not in widgets:
                    problems.append(f"{label}: no widget {name!r} in the editor")
                elif not _same(widgets[name], value):
                    problems.append(f"{label}: widget {name!r} shows {widgets[name]!r}, the "
                                    f"file has {value!r} for it")
        saved = got["widgets_values"]
        if len(saved) != len(values) or not all(map(_same, saved, values)):
            problems.append(f"{label}: the editor would save widgets_values {saved!r}, the "
                            f"file has {values!r}")
    return problems
