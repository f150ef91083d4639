# CNN Lab as a Hugging Face docker Space (README front matter: sdk: docker, app_port: 7860).
# One image for CPU and GPU hardware: PyPI's torch wheel carries CUDA and runs on CPU-only machines too.
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

# The runtime requirements only (no pytest/playwright) in a root-owned venv, from PyPI alone.
# Wheels are downloaded into a BuildKit cache mount and installed from there: torch's CUDA wheels are a few
# GB, and a rebuild after a requirements change downloads only what is new (pip's own HTTP cache is not
# reliable behind an intercepting proxy). The image does not carry the wheels. A CA bundle passed as the
# build secret `ca` (networks that intercept TLS need it) is handed to pip only when present; elsewhere the
# secret is absent and pip uses its own.
COPY requirements.txt /opt/cnnlab/requirements.txt
RUN --mount=type=cache,id=cnnlab-wheels,target=/var/cache/cnnlab-wheels \
    --mount=type=secret,id=ca,target=/run/secrets/ca \
    set -e; \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip download --no-cache-dir --progress-bar off -d /var/cache/cnnlab-wheels \
      -r /opt/cnnlab/requirements.txt; \
    /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /var/cache/cnnlab-wheels \
      -r /opt/cnnlab/requirements.txt; \
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
