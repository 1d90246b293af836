"""Packaging: metadata for the registry, a minimal requirements.txt, and an install that leaves a
user's ComfyUI environment (torch, torchvision, their OpenCV flavour) exactly as it was.

The slow tests build throw-away virtual environments that look like a user's ComfyUI Python: they
see this project's .venv through a directory of symlinks (torch, torchvision, numpy, av, ...)
minus OpenCV and segment-anything, so nothing is downloaded twice and the shared .venv is never
written to (pip does not uninstall outside the environment it runs in). Then they install the
pack the way ComfyUI-Manager does: `pip install <line>` for each requirements.txt line, then
`python install.py` in the pack's folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPENCV = ("opencv-python", "opencv-python-headless", "opencv-contrib-python",
          "opencv-contrib-python-headless")


def load_install_script():
    spec = importlib.util.spec_from_file_location("pack_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requirement_lines() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def distribution_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


# -- metadata ----------------------------------------------------------------------------------

def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_is_the_same_in_pyproject_and_the_library():
    import deflicker_impl

    assert pyproject()["project"]["version"] == deflicker_impl.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", deflicker_impl.__version__)


def test_registry_metadata_is_complete():
    meta = pyproject()
    project, comfy = meta["project"], meta["tool"]["comfy"]

    assert project["name"] == "comfyui-neural-atlas-deflicker"
    assert project["description"] and project["requires-python"]
    assert project["license"] == {"file": "LICENSE"}
    for key in ("PublisherId", "DisplayName", "requires-comfyui"):
        assert comfy[key], key
    # The other tools' sections stay where they were.
    assert meta["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert meta["tool"]["ruff"]["line-length"] == 100


def test_license_is_gpl3_like_comfyui():
    text = (ROOT / "LICENSE").read_text()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text


def test_project_dependencies_mirror_requirements_txt():
    assert pyproject()["project"]["dependencies"] == requirement_lines()


def test_requirements_never_name_torch_or_an_opencv_distribution():
    names = {distribution_name(line) for line in requirement_lines()}

    assert not names & {"torch", "torchvision", "torchaudio"}
    assert not names & set(OPENCV), "OpenCV is install.py's job (one flavour per environment)"
    # ComfyUI-Manager (older versions) pip-installs every line, comments included.
    assert all(not line.lstrip().startswith("#")
               for line in (ROOT / "requirements.txt").read_text().splitlines())


# -- install.py's decision ---------------------------------------------------------------------

@pytest.mark.parametrize("installed, importable, expected", [
    ([], False, "opencv-python-headless"),
    (["opencv-python"], True, None),
    (["opencv-contrib-python-headless"], True, None),
    (["opencv-python"], False, None),  # installed but broken: repairing it is the user's call
    ([], True, None),  # a conda or system cv2 without pip metadata
])
def test_install_script_adds_headless_opencv_only_when_none_is_there(installed, importable,
                                                                      expected):
    assert load_install_script().opencv_to_install(installed, importable) == expected


def test_install_script_sees_this_environments_opencv():
    found = load_install_script().installed_opencv_distributions()
    assert found and set(found) <= set(OPENCV)


def test_missing_cv2_fails_at_import_with_the_fix():
    code = "import sys; sys.modules['cv2'] = None; import deflicker_impl"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=False)

    assert run.returncode != 0
    assert "ImportError: OpenCV (the Python module cv2) is not installed" in run.stderr
    assert "install.py" in run.stderr and "opencv-python-headless" in run.stderr


# -- a real install into a ComfyUI-like environment (slow, needs PyPI or its mirror) -----------

# What a user's ComfyUI Python would not have yet (the pack brings it): hidden from the shadow.
_HIDDEN = re.compile(r"^(cv2|opencv_.*|segment_anything.*)$", re.IGNORECASE)


def make_comfy_like_venv(where: Path) -> Path:
    """A venv seeing this .venv's packages minus OpenCV and segment-anything; returns its python."""
    shadow = where / "shadow-site"
    shadow.mkdir(parents=True)
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not _HIDDEN.match(entry.name) and not entry.name.endswith(".pth"):
            (shadow / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    venv = where / "venv"
    # No pip of its own: pip comes from the shadow, and installs into this venv's prefix.
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    (Path(purelib.stdout.strip()) / "_comfy_like_env.pth").write_text(f"{shadow}\n")
    return python


def pip(python: Path, *args: str, cwd: Path = ROOT) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "-q", *args], cwd=cwd,
                   check=True, env=env)


def distributions(python: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, re; print(json.dumps({re.sub(r'[-_.]+', '-', "
            "d.metadata['Name']).lower(): d.version for d in m.distributions()}))")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def cv2_location(python: Path) -> tuple[str, str]:
    code = "import cv2; print(cv2.__version__); print(cv2.__file__)"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    version, file = out.stdout.split()
    return version, file


def install_like_comfyui_manager(python: Path) -> None:
    """ComfyUI-Manager: one `pip install` per requirements line, then install.py in the pack."""
    for line in requirement_lines():
        pip(python, "install", line)
    subprocess.run([python, "install.py"], cwd=ROOT, check=True)


def pack_computes_flow(python: Path) -> bool:
    """The pack's optical flow (OpenCV DIS) runs in that environment."""
    code = ("import torch; from deflicker_impl.flow import compute_flow; "
            "a = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 12), size=(32, 48), "
            "mode='bicubic')[0].permute(1, 2, 0).clamp(0, 1); f = compute_flow(a, a.roll(2, 1)); "
            "print(tuple(f.shape), round(float(f[8:24, 8:40, 0].median()), 1))")
    out = subprocess.run([python, "-c", code], cwd=ROOT, check=True, capture_output=True,
                         text=True)
    return out.stdout.split("\n")[0] == "(32, 48, 2) 2.0"


@pytest.mark.slow
def test_install_keeps_a_users_desktop_opencv_and_their_torch(tmp_path):
    python = make_comfy_like_venv(tmp_path)
    headless_version = importlib.metadata.version("opencv-python-headless")
    pip(python, "install", "--no-deps", f"opencv-python=={headless_version}")  # the user's pick
    before = distributions(python)
    cv2_before = cv2_location(python)
    assert "opencv-python" in before and "opencv-python-headless" not in before

    install_like_comfyui_manager(python)

    after = distributions(python)
    for name in ("torch", "torchvision", "numpy", *OPENCV):
        assert after.get(name) == before.get(name), name
    assert {k: v for k, v in after.items() if k in before} == before, "something was changed"
    assert set(after) - set(before) == {"segment-anything"}
    assert cv2_location(python) == cv2_before
    assert pack_computes_flow(python)


@pytest.mark.slow
def test_install_adds_headless_opencv_where_there_is_none(tmp_path):
    python = make_comfy_like_venv(tmp_path)
    before = distributions(python)
    assert not set(before) & set(OPENCV)

    install_like_comfyui_manager(python)

    after = distributions(python)
    assert {k: v for k, v in after.items() if k in before} == before, "something was changed"
    assert set(after) - set(before) == {"segment-anything", "opencv-python-headless"}
    assert pack_computes_flow(python)
