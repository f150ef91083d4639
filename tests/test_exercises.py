"""The book's exercises (cnnlab.exercises, the Exercises page): every setup builds, every training pair runs on a
tiny subset with the same data order and shared initial weights, links select exercises, the page works."""
import os
import time

import pytest
from helpers import APP, assert_no_exception, needs_fmnist

from cnnlab import exercises as X
from cnnlab.measure import measure
from cnnlab.registry import KnobError, resolve

TRAIN = [e for e in X.EXERCISES if e.kind == "train"]


def test_the_book_sections_are_covered():
    sections = {e.section for e in X.EXERCISES}
    assert {"d2l 7.6", "d2l 8.1", "d2l 8.2", "d2l 8.3", "d2l 8.4", "d2l 8.5", "d2l 8.6", "d2l 8.7",
            "Howard et al. 2017"} == sections
    # d2l-zh numbers the modern-CNN chapter 7: 7.1 AlexNet … 7.7 DenseNet (LeNet 6.6)
    zh = {e.section_label("zh") for e in X.EXERCISES}
    assert {f"d2l-zh 7.{i}" for i in range(1, 8)} | {"d2l-zh 6.6"} <= zh
    assert len({e.id for e in X.EXERCISES}) == len(X.EXERCISES)


@pytest.mark.parametrize("ex", X.EXERCISES, ids=lambda e: e.id)
def test_every_setup_builds_and_is_stated_in_both_languages(ex):
    for side in (ex.a, ex.b):
        measure(ex.config(side))
        assert side.label("en") and side.label("zh")
    for what in ("title", "question", "look", "reported"):
        assert ex.text(what, "en") and ex.text(what, "zh") and ex.text(what, "en") != ex.text(what, "zh")
    if ex.kind == "train":
        assert ex.budget_s > 0


def test_the_papers_figures_the_exercises_quote():
    costs = {e.id: [measure(e.config(s)).cost for s in (e.a, e.b)] for e in X.EXERCISES}
    a, b = costs["mobilenet_alpha"]
    assert round(a.macs / 1e6) == 569 and round(b.macs / 1e6) == pytest.approx(149, abs=1)
    assert round(a.params / 1e6, 1) == 4.2 and round(b.params / 1e6, 1) == 1.3
    a, b = costs["mobilenet_separable"]
    assert round(b.params / 1e6, 1) == 29.3 and round(b.macs / 1e6) == pytest.approx(4866, abs=3)
    a, b = costs["nin_vs_alexnet"]
    assert round(a.params / 1e6, 1) == 46.8 and round(b.params / 1e6, 2) == 1.99
    a, b = costs["mobilenet_rho"]
    assert a.params == b.params and round(b.macs / 1e6) == pytest.approx(290, abs=1)  # Table 7: 160 px


def test_bn_position_moves_only_the_batch_norm():
    before = resolve("lenet", {"batchnorm": "nn", "bn_position": "before_act"}).build()
    after = resolve("lenet", {"batchnorm": "nn", "bn_position": "after_act"}).build()
    assert [type(m).__name__ for m in before][:3] == ["Conv2d", "BatchNorm2d", "Sigmoid"]
    assert [type(m).__name__ for m in after][:3] == ["Conv2d", "Sigmoid", "BatchNorm2d"]
    assert sum(p.numel() for p in before.parameters()) == sum(p.numel() for p in after.parameters())
    plain = resolve("lenet", {"bn_position": "after_act"}).build()  # no BN: no effect
    assert [type(m).__name__ for m in plain][:2] == ["Conv2d", "Sigmoid"]
    with pytest.raises(KnobError, match="bn_position"):
        resolve("lenet", {"bn_position": "sideways"})


def test_bad_exercise_ids_are_one_sentence():
    with pytest.raises(KnobError, match="no exercise 'nope'"):
        X.get("nope")
    assert X.get("lenet_relu").id == "lenet_relu"


@pytest.mark.parametrize("ex", TRAIN, ids=lambda e: e.id)
def test_pairs_share_their_start_where_shapes_allow(ex):
    same, total = X.shared_init(ex)
    assert 1 <= same <= total
    if ex.id in ("lenet_relu", "lenet_maxpool", "alexnet_dropout", "bn_position", "bn_scratch_nn"):
        assert same == total  # the same parameters: the very same start


@needs_fmnist
@pytest.mark.parametrize("ex", TRAIN, ids=lambda e: e.id)
def test_a_pair_runs_on_a_tiny_subset_with_the_same_data_order(ex):
    from cnnlab.engine import run
    from cnnlab.engine.launch import build_data
    from cnnlab.events import EpochEnd, RunEnd

    tiny = {"train_size": 256, "test_size": 128, "epochs": 1}
    tcs = [ex.train_config(s, seed=3, **tiny) for s in (ex.a, ex.b)]
    da, db = (build_data(tc, "cpu") for tc in tcs)
    assert (da.y_train == db.y_train).all() and (da.X_train == db.X_train).all()  # the same examples, in order
    ends = []
    for tc in tcs:
        evs = list(run(tc, out_dir=None))
        assert isinstance(evs[-1], RunEnd), evs[-1]
        assert [e for e in evs if isinstance(e, EpochEnd)]
        ends.append(evs[-1].test_acc)
    line = X.reading(ex, *ends)
    assert f"{max(ends):.3f}" in line or "about the same" in line


def test_reading_says_which_side_won():
    ex = X.get("lenet_relu")
    assert X.reading(ex, 0.71, 0.84).startswith("ReLU, lr 0.1 reached 0.840 test accuracy vs 0.710")
    assert "about the same" in X.reading(ex, 0.8, 0.802)
    assert X.reading(ex, 0.71, 0.84, "zh").startswith("ReLU，学习率 0.1 的测试精度为 0.840")


# -- the page --------------------------------------------------------------------------------

def _page(monkeypatch, tmp_path, ex_id=None):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    monkeypatch.setenv("CNNLAB_EXERCISE_TINY", "1")
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/exercises.py")
    if ex_id is not None:
        at.query_params["ex"] = ex_id
    return at.run()


def test_a_link_opens_its_exercise_and_a_bad_one_says_so(monkeypatch, tmp_path):
    at = _page(monkeypatch, tmp_path, "mobilenet_separable")
    assert_no_exception(at)
    assert at.selectbox(key="ex_pick").value == "mobilenet_separable"
    table = at.dataframe[0].value
    assert "29.29 M" in list(table.iloc[:, 3]) and "×6.922" in list(table.iloc[:, 3])
    bad = _page(monkeypatch, tmp_path, "nope")
    assert_no_exception(bad)
    assert any("no exercise 'nope'" in w.value for w in bad.warning)


@needs_fmnist
def test_running_a_pair_overlays_both_curves_and_reads_the_result(monkeypatch, tmp_path):
    from cnnlab.ui.common import executor
    at = _page(monkeypatch, tmp_path, "lenet_relu")
    assert_no_exception(at)
    assert any("10 of its 10 parameter tensors" in c.value for c in at.caption)
    at.button(key="ex_run").click().run()
    assert_no_exception(at)
    ex = executor()
    mine = [s for s in ex.list(at.session_state["_owner"]) if s.meta.get("exercise") == "lenet_relu"]
    ids = [s.id for s in sorted(mine, key=lambda s: s.meta["side"])]
    assert [ex.status(i).meta["side"] for i in ids] == ["A", "B"]
    assert at.button(key="ex_run").disabled  # pressing again while the pair trains is not a refusal
    try:
        for rid in ids:
            assert ex.wait(rid, 120), ex.status(rid)
        at.run()
        assert_no_exception(at)
        import json
        fig = json.loads(at.get_by_key("ex_acc").proto.spec)
        assert [d["name"] for d in fig["data"]] == ["LeNet: sigmoid → ReLU · A · sigmoid, lr 0.9 (book)",
                                                    "LeNet: sigmoid → ReLU · B · ReLU, lr 0.1"]
        assert not at.button(key="ex_run").disabled  # both ended: the pair can run again
        assert all(len(d["y"]) == 1 for d in fig["data"])
        assert any("test accuracy" in s.value for s in at.success), [s.value for s in at.success]
        seeds = {ex.status(r).meta.get("exercise") for r in ids}
        assert seeds == {"lenet_relu"}
    finally:
        for rid in ids:
            if ex.status(rid).active:
                ex.stop(rid, at.session_state["_owner"])
            ex.wait(rid, 30)
