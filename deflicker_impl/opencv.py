"""OpenCV is needed for optical flow; say how to get it when it is missing or broken.

The pack lists no OpenCV distribution in requirements.txt (two of them side by side overwrite each
other's `cv2`); install.py adds opencv-python-headless only where no OpenCV is installed.
"""

from __future__ import annotations

MISSING_CV2 = (
    "OpenCV (the Python module cv2) is not installed, and the deflicker pack needs it for optical "
    "flow. Fix: run `python install.py` in the pack's folder with the Python that runs ComfyUI "
    "(it installs opencv-python-headless), or `python -m pip install opencv-python-headless`. "
    "If another OpenCV distribution (opencv-python, opencv-contrib-python) is already installed "
    "but broken, repair that one instead of adding a second."
)
BROKEN_CV2 = (
    "OpenCV (cv2) is installed but fails to import: {error}. If the message names libGL or "
    "another GUI library, your OpenCV is the desktop build: replace it with the headless one "
    "(`python -m pip uninstall opencv-python` then `python -m pip install "
    "opencv-python-headless`), or install the missing system library."
)


def require_cv2():
    """Import and return cv2, or raise ImportError with a message that says how to fix it."""
    try:
        import cv2
    except ModuleNotFoundError as exc:
        if exc.name == "cv2":
            raise ImportError(MISSING_CV2) from exc
        raise ImportError(BROKEN_CV2.format(error=exc)) from exc
    except ImportError as exc:
        raise ImportError(BROKEN_CV2.format(error=exc)) from exc
    return cv2
