"""Post-install step: make sure an OpenCV is importable, without fighting the one already there.

ComfyUI-Manager (and `comfy node install`) install requirements.txt and then run
`python install.py` in this folder with ComfyUI's Python. The pack needs `cv2` (DIS optical flow)
but must not list an OpenCV distribution in requirements.txt: opencv-python,
opencv-python-headless, opencv-contrib-python and opencv-contrib-python-headless all install the
same `cv2` package, so adding a second one next to the user's silently overwrites files of the
first and uninstalling either later breaks both. So: if any OpenCV is already installed (or `cv2`
imports from anywhere, e.g. a conda or system build), keep it; otherwise install
opencv-python-headless (no GUI libraries needed, works on servers).

Run it by hand with the Python that runs ComfyUI:  python install.py
Exit status 0 when an OpenCV is available afterwards.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import subprocess
import sys

OPENCV_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
FALLBACK_DISTRIBUTION = "opencv-python-headless"


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_opencv_distributions() -> list[str]:
    """Names of the OpenCV distributions installed in this interpreter, sorted."""
    wanted = set(OPENCV_DISTRIBUTIONS)
    found = {_normalise(d.metadata["Name"] or "") for d in importlib.metadata.distributions()}
    return sorted(found & wanted)


def opencv_to_install(installed: list[str], cv2_importable: bool) -> str | None:
    """The distribution to install, or None when an OpenCV is already present."""
    if installed or cv2_importable:
        return None
    return FALLBACK_DISTRIBUTION


def main() -> int:
    installed = installed_opencv_distributions()
    cv2_found = importlib.util.find_spec("cv2") is not None
    missing = opencv_to_install(installed, cv2_found)
    if missing is None:
        what = ", ".join(installed) if installed else "cv2 (not from pip)"
        print(f"[neural-atlas-deflicker] OpenCV already installed ({what}); leaving it as it is.")
        return 0
    print(f"[neural-atlas-deflicker] no OpenCV found; installing {missing}.")
    return subprocess.call([sys.executable, "-m", "pip", "install", missing])


if __name__ == "__main__":
    sys.exit(main())
