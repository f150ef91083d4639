# CNN Lab — `make run` sets everything up and starts the app; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEBIAN_DATA := /usr/share/datasets/fashion-mnist

.PHONY: run test setup data browser front bench space-test clean-venv

run: setup data
	$(PY) -m streamlit run app.py

test: setup data browser front
	bash scripts/pytest.sh $(PY)

setup: $(STAMP)

# The venv and its 5.5 GB of torch are installed once, again only when a requirements file changes.
# requirements.txt is what the app needs (the Space image installs only it); requirements-dev.txt adds the
# test-only packages (pytest, playwright, hypothesis) and includes requirements.txt; requirements-ray.txt is
# the optional Ray executor, installed for the tests (the Ray tests never skip in CI).
$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q -r requirements-ray.txt
	touch $(STAMP)

# Fashion-MNIST, offline: $$CNNLAB_DATA, ./data, then Debian's dataset-fashion-mnist package.
data:
	@bash scripts/ensure_data.sh

# Debian's chromium for the real-browser test (playwright drives it; it never downloads a browser).
browser:
	@bash scripts/ensure_browser.sh

# Debian's nginx-light, the Space's front (space/front.py), for its tests and the load test.
front:
	@bash scripts/ensure_nginx.sh

bench: setup data
	bash bench/setup_peer.sh
	$(PY) bench/bench_d2l.py

# The hosted Space image (Dockerfile), built and smoke-tested here: Debian + root; see scripts/space_smoke.sh.
space-test: setup browser
	PY=$(PY) bash scripts/space_smoke.sh

clean-venv:
	rm -rf $(VENV)
