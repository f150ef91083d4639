# CNN Lab as a Hugging Face docker Space (README front matter: sdk: docker, app_port: 7860).
# One image for CPU and GPU hardware: PyPI's torch wheel carries CUDA and runs on CPU-only machines too
# (the build argument TORCH_INDEX below makes a smaller CPU-only image from another torch index).
# No `# syntax=` line: the builtin BuildKit frontend (DOCKER_BUILDKIT=1) already supports
# RUN --mount=type=cache and --mount=type=secret, and no frontend image has to be pulled.
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180

# Debian's python3 (3.11) and Fashion-MNIST from Debian's dataset-fashion-mnist (files in
# /usr/share/datasets/fashion-mnist, where CNN Lab looks): nothing is downloaded at run time.
# nginx-light is the front (space/front.py): it serves Streamlit's static files and passes the rest on.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates dataset-fashion-mnist \
      nginx-light \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb

# The runtime packages only (no pytest/playwright) in a root-owned venv, each at the version and with the file
# hashes of requirements.lock + requirements-torch.lock (scripts/lock.sh makes them from requirements.txt): pip
# runs in hash-checking mode, wheels only, and a file whose hash differs fails the build. `pip check` then
# confirms that every installed package's dependencies are there.
# Wheels are downloaded into a BuildKit cache mount and installed from there: torch's CUDA wheels are a few
# GB, and a rebuild after a lock change downloads only what is new (pip's own HTTP cache is not reliable behind
# an intercepting proxy). The image does not carry the wheels. A CA bundle passed as the build secret `ca`
# (networks that intercept TLS need it) is handed to pip only when present; elsewhere the secret is absent and
# pip uses its own.
#
# TORCH_INDEX (empty: PyPI's torch, the image `make space-test` builds and checks) names another wheel index
# for torch and torchvision, e.g. PyTorch's CPU wheel index for a CPU-only Space (a much smaller image):
#   docker build --build-arg TORCH_INDEX=<that index's URL> .
# Then requirements-torch.lock (PyPI's torch and its CUDA wheels) is skipped and the same torch and torchvision
# versions come from that index, checked against the hashes the index publishes (not locked here: this
# repository's machine cannot reach such an index), and `pip check` confirms they fit requirements.lock.
ARG TORCH_INDEX=
COPY requirements.lock requirements-torch.lock /opt/cnnlab/
RUN --mount=type=cache,id=cnnlab-wheels,target=/var/cache/cnnlab-wheels \
    --mount=type=secret,id=ca,target=/run/secrets/ca \
    set -e; \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv; \
    pip="/opt/venv/bin/pip --no-cache-dir"; wheels=/var/cache/cnnlab-wheels; \
    locks="-r /opt/cnnlab/requirements.lock"; \
    if [ -z "$TORCH_INDEX" ]; then locks="$locks -r /opt/cnnlab/requirements-torch.lock"; fi; \
    $pip download --require-hashes --no-deps --only-binary :all: --progress-bar off -d $wheels $locks; \
    $pip install --require-hashes --no-deps --only-binary :all: --no-index --find-links $wheels $locks; \
    if [ -n "$TORCH_INDEX" ]; then \
      # That index's wheels in a folder of their own (its torch 2.14.1+cpu must not meet PyPI's 2.14.1).
      idx=$wheels/index-$(printf %s "$TORCH_INDEX" | sha256sum | cut -c1-16); \
      pins=$(sed -n 's/^\(torch\|torchvision\)==\([^ ]*\).*/\1==\2/p' /opt/cnnlab/requirements-torch.lock); \
      $pip download --no-deps --only-binary :all: --progress-bar off --index-url "$TORCH_INDEX" -d $idx $pins; \
      $pip install --no-deps --only-binary :all: --no-index --find-links $idx $pins; \
    fi; \
    /opt/venv/bin/pip check; \
    # Streamlit's frontend bundles, gzipped once here: nginx sends the .gz to browsers that accept it
    # (gzip_static), at no CPU cost per request. The originals stay for those that do not.
    find /opt/venv/lib/python3*/site-packages/streamlit/static \
      -type f \( -name '*.js' -o -name '*.css' -o -name '*.svg' -o -name '*.json' -o -name '*.html' \) \
      -size +1k -exec gzip -k -9 -n {} +

# Hugging Face docker Spaces run the container as uid 1000: a user with a writable HOME.
RUN useradd -m -u 1000 user
USER user
ENV HOME=/home/user \
    PATH=/opt/venv/bin:/home/user/.local/bin:$PATH \
    PORT=7860 \
    CNNLAB_STREAMLIT_PORT=8501 \
    CNNLAB_CHECKPOINTS=/data/cnnlab-runs \
    CNNLAB_CHECKPOINTS_FALLBACK=/tmp/cnnlab-runs \
    CNNLAB_DISK_CAP_MB=18000 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=false
# XSRF protection is off because a Space is shown inside an iframe on huggingface.co, where the browser
# drops Streamlit's XSRF cookie and every upload would fail with 403 (HF's "cookie limitations" page);
# the app has no accounts, and an upload is only an image to classify. Set it to true when hosting elsewhere.
WORKDIR $HOME/app
COPY --chown=user . $HOME/app

# Decompress Fashion-MNIST into the user's cache once at build time; this also fails the build if the
# data is not where the app looks, rather than at the first training run.
RUN python3 -c "from cnnlab.data import find_fashion_mnist; print('Fashion-MNIST:', find_fashion_mnist(download=False))"

LABEL org.opencontainers.image.title="CNN Lab" cnnlab.space="1"
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python3 -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '7860'), timeout=4)" || exit 1
# Run folders: /data/cnnlab-runs when the Space has persistent storage (/data writable), else
# /tmp/cnnlab-runs, which the app says on the Saved runs page.
# space/front.py: Streamlit on 127.0.0.1:$CNNLAB_STREAMLIT_PORT, then nginx on $PORT in front of it (static
# files from disk, the rest passed on); SIGTERM stops both, and either one ending stops the container.
# CNNLAB_FRONT=none runs Streamlit alone on $PORT.
CMD ["python3", "space/front.py"]
