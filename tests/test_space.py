"""The hosted image's choices that can be checked without Docker (scripts/space_smoke.sh builds and runs it):
where runs are saved (/data when writable, else a temp folder, said on Saved runs), and that the image's
requirements carry no test-only package."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from cnnlab import i18n
from cnnlab.ui import common

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("CNNLAB_CHECKPOINTS", raising=False)
    monkeypatch.delenv("CNNLAB_CHECKPOINTS_FALLBACK", raising=False)
    return monkeypatch


def test_default_and_set(env, tmp_path):
    assert common.checkpoint_where() == (common.ROOT / "checkpoints", "default")
    env.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "nowhere" / "yet"))
    assert common.checkpoint_where() == (tmp_path / "nowhere" / "yet", "set")
    assert not (tmp_path / "nowhere").exists()  # taken as given: nothing is created or probed


def test_persistent_when_writable(env, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    env.setenv("CNNLAB_CHECKPOINTS", str(data / "cnnlab-runs"))
    env.setenv("CNNLAB_CHECKPOINTS_FALLBACK", str(tmp_path / "tmp-runs"))
    assert common.checkpoint_where() == (data / "cnnlab-runs", "persistent")
    assert (data / "cnnlab-runs").is_dir()
    assert common.checkpoint_root() == data / "cnnlab-runs"


def test_temp_when_missing(env, tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the folder should be")  # mkdir fails for root too
    env.setenv("CNNLAB_CHECKPOINTS", str(blocker / "cnnlab-runs"))
    env.setenv("CNNLAB_CHECKPOINTS_FALLBACK", str(tmp_path / "tmp-runs"))
    root, kind = common.checkpoint_where()
    assert (root, kind) == (tmp_path / "tmp-runs", "temp")
    assert root.is_dir()
    env.setenv("CNNLAB_CHECKPOINTS_FALLBACK", "")  # empty: <temp dir>/cnnlab-runs
    env.setattr(tempfile, "tempdir", str(tmp_path / "tmpdir"))
    (tmp_path / "tmpdir").mkdir()
    assert common.checkpoint_where() == (tmp_path / "tmpdir" / "cnnlab-runs", "temp")


@pytest.mark.parametrize("kind,key", [("default", "runs.where"), ("persistent", "runs.where_persistent"),
                                      ("temp", "runs.where_temp")])
def test_note_names_the_folder_in_both_languages(env, tmp_path, kind, key):
    if kind != "default":
        target = tmp_path / ("data" if kind == "persistent" else "blocker")
        (target.mkdir() if kind == "persistent" else target.write_text("x"))
        env.setenv("CNNLAB_CHECKPOINTS", str(target / "cnnlab-runs"))
        env.setenv("CNNLAB_CHECKPOINTS_FALLBACK", str(tmp_path / "tmp-runs"))
    root, got = common.checkpoint_where()
    assert got == kind
    server_key = key.replace("runs.where", "runs.where_server")
    for lang in i18n.LANGS:
        env.setattr(common, "lang", lambda lang=lang: lang)
        env.setattr(common, "shows_paths", lambda: True)   # a signed-in teacher, or one's own machine
        note = common.checkpoint_note()
        assert str(root) in note
        assert note == i18n.t(key, lang, root=root)
        env.setattr(common, "shows_paths", lambda: False)  # a student on a shared server: never a path
        note = common.checkpoint_note()
        assert str(root) not in note and "/" not in note
        assert note == i18n.t(server_key, lang)
    for k in (key, server_key):
        en, zh = i18n.STRINGS[k]
        assert en and zh and en != zh


def _names(path: Path) -> set[str]:
    out = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.add(re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower())
    return out


def test_image_requirements_carry_no_test_only_package():
    runtime, dev = _names(ROOT / "requirements.txt"), _names(ROOT / "requirements-dev.txt")
    assert {"torch", "streamlit"} <= runtime
    assert {"pytest", "playwright"} <= dev
    assert not runtime & {"pytest", "playwright", "hypothesis"}
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    # the image installs the two hash-locked files (made from requirements.txt), nothing test-only
    assert "requirements-dev" not in dockerfile and "requirements-ray" not in dockerfile
    assert "-r /opt/cnnlab/requirements.lock" in dockerfile and "/opt/cnnlab/requirements-torch.lock" in dockerfile
    assert dockerfile.count("--require-hashes") >= 2
    locked = _names(ROOT / "requirements.lock") | _names(ROOT / "requirements-torch.lock")
    assert runtime <= locked, runtime - locked
    assert not locked & {"pytest", "playwright", "hypothesis", "nbclient", "ipykernel", "ray"}, locked
