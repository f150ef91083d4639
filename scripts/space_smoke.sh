#!/usr/bin/env bash
# The Space image, built and smoke-tested on this machine (`make space-test`; `.ci/run` calls it too).
#
# Needs a Debian machine and root. No container registry is reachable here, so it:
#   1. installs Debian's docker.io and debootstrap when missing, starts dockerd when none answers;
#   2. makes the base image debian:bookworm-slim from Debian's packages (debootstrap --variant=minbase +
#      docker import) when it is missing, from debootstrap's default mirror with the apt sources it writes
#      (bookworm main: a stand-in for Docker Hub's image, which also lists bookworm-updates and security);
#   3. builds the Dockerfile with BuildKit (Debian's /usr/bin/docker, DOCKER_BUILDKIT=1, --network host), the
#      machine's CA bundle passed as the build secret `ca` (pip inside the build uses it only when present);
#   4. checks the image: no test-only packages, exactly the locked packages at their locked versions
#      (requirements.lock + requirements-torch.lock), torch starts without a GPU, run folders fall back to a temp
#      folder without /data; prints how much of the image torch and its CUDA wheels are;
#   5. runs it as uid 1000 with a /data folder (persistent storage), waits for /_stcore/health and for
#      Docker's HEALTHCHECK to say healthy, checks that nginx (space/front.py) serves the static files gzipped,
#      then scripts/space_smoke.py opens every page in headless Chromium, trains a tiny LeNet run inside the
#      container and finds it on Saved runs; `docker stop` must end it with status 0 within 15 s;
#   6. removes what it started (container, temp folders, and dockerd when it started it) on exit.
# Any failure exits non-zero; nothing is skipped. Figures are printed at the end.
#
# Environment: PY (python with playwright, default .venv/bin/python), CNNLAB_SPACE_IMAGE (tag, default
# cnnlab-space:smoke), CNNLAB_KEEP_DOCKERD=1 (leave a dockerd this script started running).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
IMAGE=${CNNLAB_SPACE_IMAGE:-cnnlab-space:smoke}
BASE=debian:bookworm-slim
DOCKER=/usr/bin/docker
CA=/etc/ssl/certs/ca-certificates.crt
ART=tests/artifacts/space
NAME="cnnlab-space-smoke-$$"
DOCKERD_LOG=/var/log/cnnlab-dockerd.log
mkdir -p "$ART"

say()  { echo "[space-smoke] $*"; }
fail() { echo "[space-smoke] FAIL: $*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

STARTED_DOCKERD=""
DATA_DIR=""
ROOTFS=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$DOCKER_OK" ] && "$DOCKER" container inspect "$NAME" >/dev/null 2>&1; then
    if [ "$rc" -ne 0 ]; then
      echo "[space-smoke] container log (last 60 lines):" >&2
      "$DOCKER" logs --tail 60 "$NAME" >&2 2>&1
    fi
    "$DOCKER" rm -f "$NAME" >/dev/null 2>&1 && say "removed container $NAME"
  fi
  [ -n "$DATA_DIR" ] && rm -rf "$DATA_DIR"
  [ -n "$ROOTFS" ] && rm -rf "$ROOTFS"
  if [ -n "$STARTED_DOCKERD" ] && [ "${CNNLAB_KEEP_DOCKERD:-0}" != 1 ]; then
    kill "$STARTED_DOCKERD" 2>/dev/null && say "stopped the dockerd it started (pid $STARTED_DOCKERD)"
    for _ in $(seq 1 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
  fi
  if [ "$rc" -ne 0 ]; then echo "[space-smoke] FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
DOCKER_OK=""
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || fail "must run as root (it installs docker.io and starts dockerd)"
command -v apt-get >/dev/null || fail "needs a Debian machine (apt-get)"
[ -x "$PY" ] || fail "no $PY: run 'make setup' first (the browser check uses the venv's playwright)"
[ -x /usr/bin/chromium ] || fail "no /usr/bin/chromium: run 'make browser' (Debian's chromium)"

# 1. Debian's docker.io and debootstrap; dockerd.
if [ ! -x "$DOCKER" ] || ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  say "installing Debian's docker.io and debootstrap"
  apt-get update -q >/dev/null
  apt-get install -y -q docker.io debootstrap >/dev/null
fi
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd (log: $DOCKERD_LOG)"
  setsid dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
  STARTED_DOCKERD=$!
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$STARTED_DOCKERD" 2>/dev/null || { tail -20 "$DOCKERD_LOG" >&2; fail "dockerd exited"; }
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$DOCKERD_LOG" >&2; fail "dockerd did not answer within 60 s"; }
else
  say "dockerd already running: reusing it"
fi
DOCKER_OK=1

# 2. The base image from Debian's own packages.
if "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  say "base image $BASE present: reusing it"
else
  say "making $BASE with debootstrap --variant=minbase bookworm"
  t=$(now)
  ROOTFS=$(mktemp -d /tmp/cnnlab-rootfs.XXXXXX)
  # debootstrap's default mirror, and the apt sources it writes for it (bookworm main), stay as they are.
  debootstrap --variant=minbase bookworm "$ROOTFS" >"$ART/debootstrap.log" 2>&1 \
    || { tail -20 "$ART/debootstrap.log" >&2; fail "debootstrap failed"; }
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
  tar -C "$ROOTFS" -c . | "$DOCKER" import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
  rm -rf "$ROOTFS"; ROOTFS=""
  say "base image made in $(since "$t") s"
fi

# 3. Build (BuildKit; the pip cache is a cache mount, so a rebuild does not download torch again). The image installs
# requirements.lock + requirements-torch.lock: first, are they up to date with requirements.txt?
"$PY" scripts/lock_check.py || fail "requirements.txt and the lock disagree: run bash scripts/lock.sh"
SECRET=()
[ -s "$CA" ] && SECRET=(--secret "id=ca,src=$CA")
say "building $IMAGE (log: $ART/build.log)"
t=$(now)
if ! DOCKER_BUILDKIT=1 "$DOCKER" build --network host --progress plain "${SECRET[@]}" -t "$IMAGE" . \
     >"$ART/build.log" 2>&1; then
  tail -40 "$ART/build.log" >&2
  fail "docker build failed"
fi
BUILD_S=$(since "$t")
# The image a rebuild replaced is left untagged: remove such leftovers of this Dockerfile (label cnnlab.space).
"$DOCKER" image prune -f --filter label=cnnlab.space >/dev/null || true
CACHED=$(grep -c '^#[0-9]* CACHED' "$ART/build.log" || true)
IMAGE_BYTES=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
IMAGE_GB=$(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.2f", b / 1e9 }')
say "built in $BUILD_S s ($CACHED steps cached); image $IMAGE_GB GB"
{
  echo "image $IMAGE: $IMAGE_GB GB ($IMAGE_BYTES bytes)"
  echo "build: $BUILD_S s ($CACHED steps cached)"
} >"$ART/figures.txt"

# 4. The image itself: runtime packages only; torch runs without a GPU; no /data -> temp folder.
# (streamlit warns that no runtime is found when cnnlab.ui is imported outside `streamlit run`: filtered)
"$DOCKER" run --rm -i --user 1000:1000 --network none "$IMAGE" python3 - <<'EOF' 2>&1 \
  | grep -v "No runtime found, using MemoryCacheStorageManager" || fail "image check failed"
import importlib.util, os, pathlib, sys
bad = [m for m in ("pytest", "playwright", "hypothesis", "_pytest") if importlib.util.find_spec(m)]
assert not bad, f"test-only packages in the image: {bad}"
assert os.getuid() == 1000, os.getuid()
home = pathlib.Path(os.environ["HOME"])
(home / ".write-check").write_text("ok"); (home / ".write-check").unlink()
import torch
x = torch.nn.Conv2d(1, 2, 3)(torch.ones(1, 1, 8, 8))
assert x.shape == (1, 2, 6, 6)
from cnnlab.ui.common import checkpoint_root, checkpoint_where
root, kind = checkpoint_where()
assert kind == "temp" and root == checkpoint_root() == pathlib.Path("/tmp/cnnlab-runs"), (root, kind)
print(f"image check: uid {os.getuid()}, HOME {home} writable, torch {torch.__version__} "
      f"(CUDA build {torch.version.cuda}, GPU here: {torch.cuda.is_available()}), no test-only packages, "
      f"runs without /data -> {root}")
EOF

# The image holds exactly the locked versions (requirements.lock + requirements-torch.lock), no more, no less.
"$DOCKER" run --rm --network none "$IMAGE" pip list --format freeze >"$ART/image-packages.txt" 2>/dev/null \
  || fail "pip list in the image failed"
"$PY" - requirements.lock requirements-torch.lock "$ART/image-packages.txt" <<'PY' || fail "the image's packages are not the lock's"
import re, sys
def pins(path):
    return {re.sub(r"[-_.]+", "-", m[1]).lower(): m[2]
            for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)", open(path).read(), re.M)}
locked = pins(sys.argv[1]) | pins(sys.argv[2])
inside = pins(sys.argv[3])
inside.pop("pip")   # the venv's own pip (Debian's python3-venv), not installed from the lock
diff = {n: (locked.get(n), inside.get(n)) for n in sorted(locked.keys() | inside.keys()) if locked.get(n) != inside.get(n)}
assert not diff, f"package: (locked, in the image): {diff}"
print(f"image packages: the {len(locked)} of requirements.lock + requirements-torch.lock, each at its locked version")
PY
# How much of the image PyPI's torch is (a CPU-only image, built with TORCH_INDEX, leaves out the CUDA wheels).
read -r TORCH_MB CUDA_MB < <("$DOCKER" run --rm --network none "$IMAGE" sh -c \
  'cd /opt/venv/lib/python3*/site-packages && echo $(du -scm torch torchgen torchvision torchvision.libs | tail -1 | cut -f1) $(du -scm nvidia cuda triton | tail -1 | cut -f1)')
say "in the image: torch + torchvision $TORCH_MB MB, the CUDA wheels (nvidia-*, cuda-*, triton) $CUDA_MB MB"
echo "in the image: torch + torchvision $TORCH_MB MB, the CUDA wheels (nvidia-*, cuda-*, triton) $CUDA_MB MB" \
  >>"$ART/figures.txt"

# 5. Run it as uid 1000 with persistent storage at /data, on a free port mapped to the image's 7860.
DATA_DIR=$(mktemp -d /tmp/cnnlab-space-data.XXXXXX)
chown 1000:1000 "$DATA_DIR"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t=$(now)
"$DOCKER" run -d --name "$NAME" --user 1000:1000 -p "127.0.0.1:$PORT:7860" -v "$DATA_DIR:/data" \
  --health-interval 2s --health-start-period 60s "$IMAGE" >/dev/null
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 240); do
  "$PY" -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('$URL/_stcore/health', timeout=2).read().strip() != b'ok')" \
    2>/dev/null && break
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container exited"
  sleep 0.5
done
"$PY" -c "import urllib.request; urllib.request.urlopen('$URL/_stcore/health', timeout=2)" 2>/dev/null \
  || fail "no answer on $URL/_stcore/health within 120 s"
HEALTH_S=$(since "$t")
say "answering on $URL/_stcore/health after $HEALTH_S s"
echo "container start to /_stcore/health ok: $HEALTH_S s" >>"$ART/figures.txt"
for _ in $(seq 1 60); do
  [ "$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$NAME")" = healthy ] && break
  sleep 0.5
done
STATUS=$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$NAME")
[ "$STATUS" = healthy ] || fail "Docker's HEALTHCHECK says $STATUS"
say "HEALTHCHECK: $STATUS after $(since "$t") s"

# The front (space/front.py): a bundle comes from nginx, gzipped at build time, with a year's cache.
"$PY" - "$URL" <<'PY' || fail "the nginx front does not serve the static files"
import re, sys, urllib.request
url = sys.argv[1]
page = urllib.request.urlopen(url + "/", timeout=10).read().decode()
bundle = re.search(r'src="\./(static/js/[^"]+\.js)"', page).group(1)
req = urllib.request.Request(f"{url}/{bundle}", headers={"Accept-Encoding": "gzip"})
with urllib.request.urlopen(req, timeout=10) as r:
    h = r.headers
    assert h.get("Server", "").startswith("nginx"), h.get("Server")
    assert h.get("Content-Encoding") == "gzip", h.get("Content-Encoding")
    assert "immutable" in h.get("Cache-Control", ""), h.get("Cache-Control")
    print(f"front: /{bundle} from nginx, gzip ({h.get('Content-Length')} bytes), {h.get('Cache-Control')}")
PY

"$PY" scripts/space_smoke.py --url "$URL" --container "$NAME" --docker "$DOCKER" --runs /data/cnnlab-runs \
  --host-runs "$DATA_DIR/cnnlab-runs" --artifacts "$ART" --figures "$ART/figures.txt" \
  || fail "browser / training check failed"

MEM=$("$DOCKER" stats --no-stream --format '{{.MemUsage}}' "$NAME" 2>/dev/null || echo "?")
echo "container memory after the checks: $MEM" >>"$ART/figures.txt"
# docker stop: SIGTERM reaches space/front.py, which stops Streamlit and nginx; status 0, well within 20 s.
t=$(now)
"$DOCKER" stop -t 20 "$NAME" >/dev/null
STOP_S=$(since "$t")
EXIT=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$EXIT" = 0 ] || fail "the container exited with $EXIT on docker stop"
awk -v s="$STOP_S" 'BEGIN { exit !(s < 15) }' || fail "docker stop took $STOP_S s (SIGTERM not handled)"
say "docker stop: exit 0 after $STOP_S s"
echo "docker stop: exit 0 after $STOP_S s" >>"$ART/figures.txt"
say "figures ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores):"
sed 's/^/  /' "$ART/figures.txt"
say "passed"
