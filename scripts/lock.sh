#!/usr/bin/env bash
# requirements.txt -> requirements.lock + requirements-torch.lock: every runtime package the Space image installs,
# transitive ones included, at one exact version, with the sha256 of each of that version's files on PyPI
# (pip checks them: hash-checking mode). `make setup` installs the same two files, so `make run`, `make test`
# and the image run the same versions.
#
#   bash scripts/lock.sh                          # after editing requirements.txt: new packages resolved, the rest kept
#   bash scripts/lock.sh --upgrade                # every package to its newest version that requirements.txt allows
#   bash scripts/lock.sh --upgrade-package NAME   # one package (pip-compile's options pass through)
#
# pip-compile (pip-tools, in a scratch venv outside the repo) resolves for the Python running it, so run it with
# Python 3.11 on Linux x86_64: the image's Debian python3 on a Hugging Face Space. It asks pip's default index
# (PyPI) only: this machine's pip.conf (other indexes, wheel folders, constraints) is set aside, or the hashes
# could be those of files the image never downloads. A CA bundle in PIP_CERT (TLS-intercepting proxies) is kept.
#
# The versions already in the lock files are kept unless requirements.txt or --upgrade asks otherwise. The
# result is split in two: torch, torchvision and the CUDA wheels PyPI's Linux torch pulls (nvidia-*, cuda-*,
# triton) go to requirements-torch.lock, which an image built with TORCH_INDEX (Dockerfile) replaces by that
# index's torch; the rest (torch's plain dependencies included) to requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'EOF' || exit 1
import platform, sys
if sys.version_info[:2] != (3, 11) or platform.system() != "Linux" or platform.machine() != "x86_64":
    sys.exit(f"scripts/lock.sh: resolve with Python 3.11 on Linux x86_64 (the image's), not Python "
             f"{platform.python_version()} on {platform.system()} {platform.machine()}: set PYTHON=")
EOF

TOOLS=${CNNLAB_PIPTOOLS:-${TMPDIR:-/tmp}/cnnlab-piptools}
if [ ! -x "$TOOLS/bin/pip-compile" ]; then
  echo "[lock] installing pip-tools in $TOOLS"
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q pip-tools
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# pip-compile keeps the pins it finds in its output file: start from the current locks.
cat requirements.lock requirements-torch.lock >"$WORK/all.lock" 2>/dev/null || true
echo "[lock] resolving requirements.txt against PyPI (a few minutes: it reads every file's hash)"
env -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_FIND_LINKS -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
  "$TOOLS/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links --no-header "$@" -o "$WORK/all.lock" requirements.txt

"$PYTHON" - "$WORK/all.lock" <<'EOF'
import re, sys

blocks, current = [], None
for line in open(sys.argv[1]).read().splitlines():
    if re.match(r"[A-Za-z0-9]", line):          # "name==version \" starts a package's block
        current = [line]
        blocks.append(current)
    elif line.startswith((" ", "\t")) and current is not None:
        current.append(line)                     # its hashes and "# via" lines
    else:
        current = None                           # pip-compile's own comments between blocks: dropped

def name(block):
    return re.match(r"[A-Za-z0-9._-]+", block[0]).group(0).lower()

def is_torch(n):
    return n in ("torch", "torchvision", "triton") or n.startswith(("nvidia-", "cuda-"))

COMMON = """\
# Made by scripts/lock.sh from requirements.txt (pip-compile --generate-hashes, Python 3.11, Linux x86_64): do not
# edit by hand; edit requirements.txt and run `bash scripts/lock.sh`. Every version is exact and every file of it
# has its sha256 from PyPI: pip installs these in hash-checking mode (the Dockerfile, `make setup`), and a file
# whose hash differs fails the install.
"""
heads = {
    "requirements.lock": "# The Space image's runtime packages, torch's own dependencies included, but not torch itself:\n"
                         "# torch, torchvision and PyPI's CUDA wheels are in requirements-torch.lock.\n",
    "requirements-torch.lock": "# torch and torchvision as PyPI builds them for Linux (CUDA 13 inside, runs on CPU too), with the\n"
                               "# CUDA wheels it pulls. An image built with TORCH_INDEX (Dockerfile) skips this file.\n",
}
for path, head in heads.items():
    chosen = [b for b in blocks if is_torch(name(b)) == (path == "requirements-torch.lock")]
    with open(path, "w") as f:
        f.write(head + COMMON)
        for b in chosen:
            f.write("\n".join(b) + "\n")
    print(f"[lock] {path}: {len(chosen)} packages")
EOF
