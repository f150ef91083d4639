"""AppTest of the Train page: presets, validation, a tiny real run in the executor's worker process that
completes and plots, stop, queue, ownership between two sessions, settings in the URL, "Train this".

Runs are real (cnnlab.engine on Fashion-MNIST, in the server's LocalExecutor) but tiny.
"""
import json
import os
import time

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402
from helpers import APP, assert_no_exception, needs_fmnist, open_page  # noqa: E402

engine = pytest.importorskip("cnnlab.engine")

from cnnlab.runs import NotOwner  # noqa: E402
from cnnlab.runs.view import view  # noqa: E402
from cnnlab.ui.common import MyRuns, executor  # noqa: E402

TIMEOUT = 60


@pytest.fixture(autouse=True)
def ckpt_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    yield tmp_path / "ckpt"
    ex = executor()  # one executor per server process: leave nothing running for the next test
    for s in ex.list():
        if s.active:
            ex.stop(s.id, s.owner)
    for s in ex.list():
        ex.wait(s.id, 30)


def _train_page() -> AppTest:
    return open_page("app_pages/train.py", TIMEOUT)


_ok = assert_no_exception


def _tiny(at, n_train=256, n_test=128, epochs=1):
    at.number_input(key="train_n_train").set_value(n_train)
    at.number_input(key="train_n_test").set_value(n_test)
    at.number_input(key="train_epochs").set_value(epochs)
    return at


def _long(at):
    _tiny(at, n_train=4096, n_test=128, epochs=50)
    at.number_input(key="train_bs").set_value(32)
    return at


def _run_id(at):
    return at.session_state["train_job_pick"]


def _wait_steps(run_id, timeout=60):
    ex = executor()
    t = time.time()
    while not view(ex, run_id).steps:
        assert time.time() - t < timeout, f"no step within the timeout: {ex.status(run_id)} {ex.workers()}"
        assert ex.status(run_id).active, ex.status(run_id).message
        time.sleep(0.05)


def test_page_renders_with_cpu_note_and_lenet_preset():
    at = _train_page()
    assert at.selectbox(key="train_preset").value == "lenet"
    assert at.selectbox(key="train_arch").value == "lenet"
    assert at.number_input(key="train_lr").value == pytest.approx(0.9)
    assert at.number_input(key="train_bs").value == 256
    assert any("No GPU here" in c.value for c in at.caption)  # this machine has no GPU
    assert any("Estimate before Start: ≈ " in c.value and "on this CPU" in c.value for c in at.caption)


def test_presets_and_arch_change_fill_book_values():
    at = _train_page()
    at.selectbox(key="train_preset").set_value("resnet_cpu").run()
    _ok(at)
    assert at.selectbox(key="train_arch").value == "resnet"
    assert at.number_input(key="train_res_resnet").value == 32
    assert at.number_input(key="train_n_train").value == 10000
    assert at.number_input(key="train_lr").value == pytest.approx(0.01)  # the CPU preset's (the book's is 0.05)
    at.selectbox(key="train_arch").set_value("vgg").run()
    _ok(at)
    assert at.slider(key="train_k_vgg_ratio").value == 4  # the book trains VGG with ratio 4
    assert at.number_input(key="train_res_vgg").value == 224
    assert at.number_input(key="train_lr").value == pytest.approx(0.05)
    # the preset box keeps the preset picked; a caption says what differs from it (Start trains what is shown)
    assert at.selectbox(key="train_preset").value == "resnet_cpu"
    assert any("Changed from this preset: resnet → vgg" in c.value for c in at.caption), [c.value for c in at.caption]
    # the book's VGG on all the data does not fit this CPU: the estimate says so before Start, Start refuses
    assert any("VGG at 224×224 on 10,000 images needs about" in w.value and "preset" in w.value
               for w in at.warning), [w.value for w in at.warning]
    at.button(key="train_start").click().run()
    _ok(at)
    assert any("needs about" in e.value for e in at.error)
    assert executor().list(at.session_state["_owner"]) == []


def test_invalid_settings_show_error():
    at = _train_page()
    at.number_input(key="train_res_lenet").set_value(8)
    at.button(key="train_start").click().run()
    _ok(at)
    assert any("resolution must be at least 12" in e.value for e in at.error)
    assert executor().list(at.session_state["_owner"]) == []


@needs_fmnist
def test_tiny_run_completes_plots_and_saves(ckpt_root):
    at = _tiny(_train_page())
    at.button(key="train_start").click().run()
    _ok(at)
    ex = executor()
    rid = _run_id(at)
    assert ex.wait(rid, 90), "the tiny run did not finish in 90 s"
    at.run()
    _ok(at)
    assert at.success, [e.value for e in at.error]
    fig = json.loads(at.get_by_key("train_curves").proto.spec)
    names = [d["name"] for d in fig["data"]]
    assert "train loss" in names and "test acc" in names
    test_acc = [d for d in fig["data"] if d["name"] == "test acc"][0]
    assert len(test_acc["y"]) == 1 and 0.0 <= test_acc["y"][0] <= 1.0
    v = view(ex, rid)
    assert v.state == "done" and v.run_dir and os.path.isdir(v.run_dir)
    assert os.path.dirname(v.run_dir) == str(ckpt_root)
    assert os.path.isfile(os.path.join(v.run_dir, "model.pt"))
    assert ex.status(rid).owner == at.session_state["_owner"]
    assert at.button(key="train_stop").proto.disabled is True  # stop is disabled once finished


@needs_fmnist
def test_stop_ends_run_quickly_and_keeps_checkpoint():
    at = _long(_train_page())
    at.button(key="train_start").click().run()
    _ok(at)
    ex = executor()
    rid = _run_id(at)
    _wait_steps(rid)
    at.run()
    assert at.button(key="train_stop").proto.disabled is False
    t = time.time()
    at.button(key="train_stop").click().run()
    assert ex.wait(rid, 10)
    took = ex.status(rid).finished - t
    assert took < 2.0, f"the run ended {took:.2f} s after the stop request"
    at.run()
    _ok(at)
    v = view(ex, rid)
    assert v.state == "stopped", v.state
    assert any("Stopped" in w.value for w in at.warning)
    assert v.run_dir and os.path.isfile(os.path.join(v.run_dir, "model.pt"))
    cfg = json.load(open(os.path.join(v.run_dir, "config.json")))
    assert cfg["status"] == "stopped"


@needs_fmnist
def test_a_second_session_sees_neither_the_settings_nor_a_stop_for_the_first_sessions_run():
    a = _long(_train_page())
    a.number_input(key="train_seed").set_value(4242)
    a.button(key="train_start").click().run()
    _ok(a)
    ex = executor()
    rid = _run_id(a)
    label = ex.status(rid).label
    _wait_steps(rid)
    b = _train_page()  # another browser: another owner
    _ok(b)
    assert b.session_state["_owner"] != a.session_state["_owner"]
    assert any("No run yet" in i.value for i in b.info)
    assert any("Other people: 1 training, 0 waiting" in c.value for c in b.caption)
    shown = " ".join(str(e.value) for e in list(b.markdown) + list(b.caption) + list(b.info) + list(b.selectbox))
    assert label not in shown and rid not in shown
    assert "train_job_pick" not in b.session_state or b.session_state["train_job_pick"] != rid
    with pytest.raises(KeyError):
        b.button(key="train_stop")  # no Stop to press: B has no run
    assert MyRuns(ex, b.session_state["_owner"]).stop(rid) is False
    with pytest.raises(NotOwner):
        ex.stop(rid, b.session_state["_owner"])
    assert ex.status(rid).active
    # B's own run waits behind A's and says how many are ahead
    _tiny(b).button(key="train_start").click().run()
    _ok(b)
    assert any(i.value.startswith(("Waiting in the queue: yours is next.",
                                   "Waiting in the queue: 1 run is ahead of yours.")) and "Expected wait: ≈ " in i.value
               for i in b.info), [i.value for i in b.info]
    assert _run_id(b) != rid
    # and A still sees (and can stop) only A's run
    a.run()
    opts = a.selectbox(key="train_job_pick").options
    assert len(opts) == 1 and opts[0].startswith(rid)
    a.button(key="train_stop").click().run()
    assert ex.wait(rid, 10) and ex.status(rid).state == "stopped"


@needs_fmnist
def test_queue_position_and_my_run_survives_a_reload():
    at = _long(_train_page())
    at.button(key="train_start").click().run()
    first = _run_id(at)
    _wait_steps(first)
    at.button(key="train_start").click().run()
    _ok(at)
    second = _run_id(at)
    assert second != first
    assert any("Waiting in the queue: yours is next." in i.value for i in at.info), [i.value for i in at.info]
    # a third run by the same person is refused with one sentence (1 training + 1 waiting)
    at.button(key="train_start").click().run()
    assert any("you already have 2 runs training or waiting" in e.value for e in at.error)
    # a reload is a new session with the same owner cookie: it shows my active run
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.session_state["_owner"] = at.session_state["_owner"]
    again.run()
    again.switch_page("app_pages/train.py").run()
    _ok(again)
    assert again.selectbox(key="train_job_pick").value == first
    # a page switch keeps the chosen run
    at.switch_page("app_pages/architecture.py").run()
    at.switch_page("app_pages/train.py").run()
    _ok(at)
    assert at.selectbox(key="train_job_pick").value == second
    at.button(key="train_stop").click().run()  # cancel the queued run
    ex = executor()
    assert ex.wait(second, 5) and ex.status(second).state == "cancelled"
    ex.stop(first, at.session_state["_owner"])
    assert ex.wait(first, 10)


def test_settings_survive_a_page_switch():
    at = _train_page()
    at.selectbox(key="train_preset").set_value("densenet_cpu").run()
    at.number_input(key="train_epochs").set_value(7).run()
    at.switch_page("app_pages/runs.py").run()
    at.switch_page("app_pages/train.py").run()
    _ok(at)
    assert at.selectbox(key="train_arch").value == "densenet"
    assert at.number_input(key="train_epochs").value == 7
    assert at.number_input(key="train_res_densenet").value == 32
    assert at.selectbox(key="train_preset").value == "densenet_cpu"
    assert any("Changed from this preset: epochs 3 → 7" in c.value for c in at.caption), [c.value for c in at.caption]


def test_settings_live_in_the_url_and_a_link_restores_them():
    at = _train_page()
    at.selectbox(key="train_preset").set_value("resnet_cpu").run()
    at.number_input(key="train_epochs").set_value(4).run()
    qp = dict(at.query_params)
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in qp.items()}
    assert flat["arch"] == "resnet" and flat["ep"] == "4" and flat["res"] == "32" and flat["ntr"] == "10000"
    assert "u" not in flat and not any(at.session_state["_owner"] in str(v) for v in flat.values())
    # a link with settings opens the Train page with them
    link = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    link.switch_page("app_pages/train.py").run()
    link.query_params.clear()  # a fresh address: only what the link says
    for k, v in {"arch": "vgg", "ratio": "8", "res": "32", "ep": "3", "ntr": "2000", "lr": "0.02"}.items():
        link.query_params[k] = v
    link.run()
    _ok(link)
    assert link.selectbox(key="train_arch").value == "vgg"
    assert link.slider(key="train_k_vgg_ratio").value == 8
    assert link.number_input(key="train_res_vgg").value == 32
    assert link.number_input(key="train_epochs").value == 3
    assert link.number_input(key="train_n_train").value == 2000
    assert link.number_input(key="train_lr").value == pytest.approx(0.02)
    assert link.selectbox(key="train_preset").value == "custom"


def test_architecture_page_train_this_links_the_same_model():
    at = open_page("app_pages/architecture.py", TIMEOUT)
    at.selectbox(key="arch_arch").set_value("resnet").run()
    at.number_input(key="arch_res_resnet").set_value(64).run()
    _ok(at)
    links = [e for e in at.main if getattr(e.proto, "page", None) is not None and "train" in str(e.proto.page)]
    assert links, "no Train this link"
    url = links[0].proto.page + ("?" + links[0].proto.query_string if getattr(links[0].proto, "query_string", "")
                                 else "")
    assert "arch=resnet" in str(links[0].proto) and "res=64" in str(links[0].proto), links[0].proto


def _stale_echo(at, before: dict) -> None:
    """What a browser that had not drawn the preset's values yet sends back: the old values (and Start)."""
    for key, value in before.items():
        at.session_state[key] = value


def test_choosing_a_preset_always_applies_it_even_when_old_values_come_back():
    """Seen under load: a preset was picked, the browser sent its next request (Start) with the values it still
    showed, Streamlit took them, and the full run started instead of the preset's. Those stale values are undone."""
    at = _train_page()  # the LeNet preset: 10 epochs, all 60,000 examples
    assert at.number_input(key="train_epochs").value == 10
    at.selectbox(key="train_preset").set_value("lenet_quick").run()
    _ok(at)
    assert at.number_input(key="train_epochs").value == 1
    assert at.selectbox(key="train_preset").value == "lenet_quick"
    # the next request echoes the LeNet preset's values for every setting
    _stale_echo(at, {"train_epochs": 10, "train_n_test": 10000, "train_k_lenet_batchnorm": "off"})
    at.run()
    _ok(at)
    assert at.number_input(key="train_epochs").value == 1
    assert at.number_input(key="train_n_test").value == 2000
    assert at.selectbox(key="train_preset").value == "lenet_quick"
    assert not any("Changed from this preset" in c.value for c in at.caption)
    # a change made later, on purpose, stays
    at.run()
    at.number_input(key="train_epochs").set_value(10).run()
    _ok(at)
    assert at.number_input(key="train_epochs").value == 10
    assert any("Changed from this preset: epochs 1 → 10" in c.value for c in at.caption)


def test_preset_labels_come_from_measured_figures():
    from cnnlab import presets
    from cnnlab.runs import admission
    at = _train_page()
    sb = at.selectbox(key="train_preset")
    data = presets.measured()
    assert data, "cnnlab/presets_measured.json is missing: run bench/bench_presets.py --write"
    row = data["presets"]["lenet_quick"]
    shown = [o for o in sb.options if o.startswith("BN-LeNet · full data · 1 epoch")]
    assert shown == [admission.preset_label(presets.PRESETS["lenet_quick"], "en", data)]
    assert f"test acc ≥ {presets.stated_accuracy(row['test_acc']):.2f}" in shown[0]


def _open_assignment(aid: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/train.py").run()
    at.query_params.clear()
    at.query_params["assign"] = aid
    return at.run()


def test_an_assignment_link_fixes_its_locked_settings(ckpt_root):
    from cnnlab import assignments
    a = assignments.create(ckpt_root, {"arch": "vgg", "ratio": "8", "fc_width": "512", "res": "32", "ep": "2",
                                       "ntr": "256", "nte": "128", "lr": "0.05"},
                           ["arch", "ratio", "res", "ep"], title="VGG ratio 8", preset="vgg_cpu")
    at = _open_assignment(a.id)
    _ok(at)
    assert at.selectbox(key="train_arch").value == "vgg" and at.selectbox(key="train_arch").disabled
    assert at.slider(key="train_k_vgg_ratio").value == 8 and at.slider(key="train_k_vgg_ratio").disabled
    assert at.number_input(key="train_res_vgg").value == 32 and at.number_input(key="train_res_vgg").disabled
    assert at.number_input(key="train_epochs").value == 2 and at.number_input(key="train_epochs").disabled
    assert not at.number_input(key="train_lr").disabled  # left open by the assignment
    assert any("VGG ratio 8" in i.value and "ratio" in i.value for i in at.info), [i.value for i in at.info]
    # an open setting can change; an edited address cannot unlock a locked one
    at.number_input(key="train_lr").set_value(0.02).run()
    _ok(at)
    assert at.number_input(key="train_lr").value == pytest.approx(0.02)
    at.query_params["ratio"] = "1"
    at.query_params["ep"] = "50"
    at.query_params["nte"] = "256"
    at.run()
    _ok(at)
    assert at.slider(key="train_k_vgg_ratio").value == 8
    assert at.number_input(key="train_epochs").value == 2
    assert at.number_input(key="train_n_test").value == 256  # open: the address may set it
    flat = {k: (v[0] if isinstance(v, list) else v) for k, v in dict(at.query_params).items()}
    assert flat["assign"] == a.id and flat["ratio"] == "8"


def test_a_locked_setting_changed_behind_the_widgets_back_is_refused(ckpt_root):
    from cnnlab import assignments
    a = assignments.create(ckpt_root, {"arch": "lenet", "ep": "1", "ntr": "256", "nte": "128"}, ["arch", "ep"])
    at = _open_assignment(a.id)
    _ok(at)
    at.session_state["train_epochs"] = 9  # what a stale or crafted request could carry
    at.button(key="train_start").click().run()
    _ok(at)
    assert any("ep must stay as the assignment sets them" in e.value for e in at.error), [e.value for e in at.error]
    assert executor().list(at.session_state["_owner"]) == []


@needs_fmnist
def test_a_run_started_under_an_assignment_carries_its_id(ckpt_root):
    from cnnlab import assignments
    a = assignments.create(ckpt_root, {"arch": "lenet", "ep": "1", "ntr": "256", "nte": "128"}, ["arch"],
                           preset="lenet")
    at = _open_assignment(a.id)
    at.button(key="train_start").click().run()
    _ok(at)
    st_ = executor().status(_run_id(at))
    assert st_.meta["assignment"] == a.id and st_.meta["preset"] == "custom"  # 1 epoch on 256 is not the preset's


def test_an_unknown_assignment_is_one_sentence_and_the_normal_page(ckpt_root):
    at = _open_assignment("doesnotexist1")
    _ok(at)
    assert any("no such assignment" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.selectbox(key="train_arch").disabled


def _publish(root, pid: str, locked) -> str:
    """An assignment as the Class page publishes it (cnnlab.ui.teacher_view.assignments_panel)."""
    from cnnlab import assignments
    from cnnlab.ui.teacher_view import _assignment_params

    params = {**_assignment_params(pid), "seed": "0"}
    return assignments.create(root, params, [x for x in locked if x in params], preset=pid).id


def _started_and_stopped(at) -> None:
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    rid = _run_id(at)
    ex = executor()
    assert ex.status(rid) is not None
    ex.stop(rid, at.session_state["_owner"])


@pytest.mark.parametrize("pid", [p.id for p in __import__("cnnlab.presets", fromlist=["x"]).CPU_PRESETS])
def test_every_published_preset_starts_as_published_with_the_default_locks(ckpt_root, pid):
    """The quick-demo LeNet assignment could never start: its res=28 is no `res` in the page's own URL."""
    at = _open_assignment(_publish(ckpt_root, pid, ["arch", "res", "ep"]))
    _ok(at)
    assert at.selectbox(key="train_preset").disabled  # the assignment is the preset: no other can be picked
    at.button(key="train_start").click().run()
    _started_and_stopped(at)


def test_a_preset_published_with_every_setting_fixed_starts_as_published(ckpt_root):
    at = _open_assignment(_publish(ckpt_root, "bn_lenet", ["arch", "res", "ep", "lr", "bs", "ntr", "nte", "seed"]))
    _ok(at)
    assert at.selectbox(key="train_k_lenet_batchnorm").value == "scratch"
    assert at.selectbox(key="train_k_lenet_batchnorm").disabled  # fixing arch fixes its knobs
    box = " ".join(i.value for i in at.info)
    assert "Fixed by your teacher" in box and "Yours to change" in box and "batchnorm = scratch" in box, box
    at.button(key="train_start").click().run()
    _started_and_stopped(at)
