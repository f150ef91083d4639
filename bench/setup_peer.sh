#!/bin/sh
# Scratch environment for the d2l peer benchmark (bench/bench_d2l.py). Not a dependency of the app.
# It borrows torch from the project's .venv through a .pth file, then installs d2l 1.0.3 without its
# pinned dependencies (which would pull an old torch).
set -eu
cd "$(dirname "$0")/.."
VENV=${PEER_VENV:-.peer-venv}
MAIN_SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
python3 -m venv "$VENV"
PEER_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$MAIN_SITE" > "$PEER_SITE/cnnlab_borrow_torch.pth"
"$VENV/bin/pip" install --quiet matplotlib pandas requests ipython scipy
"$VENV/bin/pip" install --quiet --no-deps d2l==1.0.3
"$VENV/bin/python" -c 'import torch, d2l; print("peer ready: torch", torch.__version__, "d2l", d2l.__version__)'
