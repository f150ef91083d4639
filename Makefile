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

# The venv and its 5.5 GB of torch are installed once, again only when a requirements or lock file changes.
# requirements.txt is what the app needs; requirements.lock + requirements-torch.lock (scripts/lock.sh makes them
# from it) are those packages and all they pull at exact versions with their hashes, installed first as the Space
# image installs them (hash-checking mode), so `make run`, `make test` and the image run the same versions.
# requirements-dev.txt adds the test-only packages (pytest, playwright, hypothesis) and requirements-ray.txt the
# optional Ray executor, installed for the tests (the Ray tests never skip in CI); both install with the locked
# versions as constraints ($(VENV)/lock-pins.txt, the locks without their hashes: pip would take hashes in a
# constraints file as hash-checking mode for every package), so they cannot move a runtime package.
# scripts/lock_check.py fails the setup when requirements.txt asks for what the locks do not hold.
$(STAMP): requirements.txt requirements.lock requirements-torch.lock requirements-dev.txt requirements-ray.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --require-hashes --no-deps --only-binary :all: -r requirements.lock -r requirements-torch.lock
	$(PY) scripts/lock_check.py
	sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' requirements.lock requirements-torch.lock >$(VENV)/lock-pins.txt
	$(PY) -m pip install -q -r requirements-dev.txt -c $(VENV)/lock-pins.txt
	$(PY) -m pip install -q -r requirements-ray.txt -c $(VENV)/lock-pins.txt
	$(PY) -m pip check
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
