"""Time estimates (#21 §4): one function (cnnlab.runs.admission.expect_runs) behind the preset labels, the exercises'
pair and the text before Start; one formatter in both languages; the queue and the shared CPU lengthen it; a figure
from presets_measured.json alone says "on a quiet machine". Unit tests: no timing assertions."""
import time
from types import SimpleNamespace

import pytest

from cnnlab import exercises as X
from cnnlab import i18n, presets
from cnnlab.events import StepEnd
from cnnlab.runs import Limits, RunStatus, admission


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    """The measured machine's CPU rate (scale 1), no probe, no load remembered from earlier runs."""
    monkeypatch.setenv("CNNLAB_LOAD_PROBE", "0")
    monkeypatch.setattr(admission, "cpu_rate", lambda: 22e9)
    monkeypatch.setattr(admission, "_live", {"factor": 1.0, "at": -1e9})


class FakeExecutor:
    """What expect_runs reads from an executor: list(), status(), events(), limits, _slots()."""

    def __init__(self, runs=(), slots=1, per_owner=1):
        self.limits = Limits(cpu_slots=slots, max_active_per_owner=per_owner, max_queued_per_owner=4)
        self.runs = list(runs)   # [(RunStatus, [events])], oldest first
        self._n = slots

    def _slots(self, device):
        return self._n

    def list(self, owner=None):
        return [st for st, _ in reversed(self.runs) if owner is None or st.owner == owner]

    def status(self, run_id):
        return next((st for st, _ in self.runs if st.id == run_id), None)

    def events(self, run_id, since=0):
        evs = next((e for st, e in self.runs if st.id == run_id), [])
        return evs[since:]


def _run(rid, state, seconds, owner="other", spe=1e-4, steps=(), created=None):
    evs = list(steps)
    st = RunStatus(id=rid, owner=owner, executor="local", state=state, position=0 if state == "running" else 1,
                   label=rid, device="cpu", created=created if created is not None else time.time(),
                   started=time.time() if state == "running" else None, finished=None, run_dir=None, message="",
                   n_events=len(evs), meta={"estimate": {"seconds": seconds, "train_s_per_example": spe}})
    return st, evs


def _step(step, total, eps, eta=0.0):
    return StepEnd(step=step, total_steps=total, epoch=1, loss=1.0, acc=0.5, examples_per_s=eps, eta_s=eta)


def _quick():
    return presets.train_config(presets.PRESETS["lenet_quick"])


# -- the one formatter ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("s,en,zh", [(3.2, "≈ 3 s", "约 3 秒"), (27, "≈ 25 s", "约 25 秒"), (95, "≈ 2 min", "约 2 分钟"),
                                     (420, "≈ 7 min", "约 7 分钟"), (5400, "≈ 1.5 h", "约 1.5 小时"),
                                     (3600, "≈ 1 h", "约 1 小时")])
def test_the_formatter_in_both_languages(s, en, zh):
    assert admission.fmt_time(s) == en and admission.fmt_time(s, "en") == en
    assert admission.fmt_time(s, "zh") == zh
    assert i18n.text_of(admission.fmt_time(s), "zh") == zh  # the English library sentence is said in Chinese too
    assert admission.fmt_time(s, about=False) == en[2:]


def test_chinese_texts_show_no_english_units():
    """The issue: zh showed "≈ 7 min" in English before Start."""
    te = admission.TimeEstimate(total_s=430, wait_s=70, run_s=360, quiet_s=100, load=3.0, source="runs", ahead=2,
                                share=1.0, pace_source="preset")
    for text in (te.text("zh"), te.text("zh", mem="420 MB", dev="CPU"), i18n.text_of(te.text(), "zh"),
                 i18n.text_of(admission.fmt_duration(420), "zh")):
        assert " min" not in text and " s" not in text and "分钟" in text, text
    est = admission.estimate(_quick().resolved())
    assert "分钟" in i18n.text_of(est.text(), "zh") or "秒" in i18n.text_of(est.text(), "zh")


# -- what the estimate is made of -----------------------------------------------------------------------------------

def test_a_measured_preset_takes_its_measured_time_and_says_quiet_machine():
    data = presets.measured()
    quiet = admission.expect(_quick(), data=data)
    row = data["presets"]["lenet_quick"]
    assert quiet.quiet and quiet.source == "quiet" and quiet.pace_source == "preset"
    # the measured wall time plus the executor's own part (start-up, checkpoints): nothing else on a quiet machine
    assert row["wall_s"] <= quiet.total_s <= row["wall_s"] + 3
    label = admission.preset_label(presets.PRESETS["lenet_quick"], "en", data)
    assert "on a quiet machine" in label and admission.fmt_time(quiet.total_s) in label
    assert "空闲机器上" in admission.preset_label(presets.PRESETS["lenet_quick"], "zh", data)


def test_a_live_figure_does_not_claim_a_quiet_machine_and_the_labels_stay_put(monkeypatch):
    """The preset labels are the quiet figure, said as such, whatever the load (a label that changed as the page
    reran moved the preset box's options); the same estimate at the load now says "here now"."""
    quiet = admission.preset_label(presets.PRESETS["lenet_quick"], "en")
    monkeypatch.setattr(admission, "machine_load", lambda executor=None: admission.Load(3.0, "probe"))
    assert admission.preset_label(presets.PRESETS["lenet_quick"], "en") == quiet and "on a quiet machine" in quiet
    live = admission.expect(presets.train_config(presets.PRESETS["lenet_quick"])).text("en")
    assert "quiet machine" not in live and "here now" in live


def test_the_estimate_grows_with_the_queue():
    tc = _quick()
    alone = admission.expect(tc, executor=FakeExecutor())
    totals = []
    for n in (1, 2, 4):
        runs = [_run("r0", "running", 100.0, steps=[_step(10, 100, 1e4)])]
        runs += [_run(f"q{i}", "queued", 50.0, owner=f"o{i}", created=time.time() + i) for i in range(n - 1)]
        te = admission.expect(tc, executor=FakeExecutor(runs))
        assert te.ahead == n and te.wait_s > 0
        totals.append(te.total_s)
    assert alone.total_s < totals[0] < totals[1] < totals[2]
    # one running run 10 % done (90 s of quiet work left) and one queued (50 s): the new run waits ≈ 140 s
    assert totals[1] - alone.total_s == pytest.approx(140.0, rel=0.01)
    assert "waiting behind 2 run(s)" in admission.expect(tc, executor=FakeExecutor(
        [_run("r0", "running", 100.0), _run("q0", "queued", 50.0, owner="o0", created=time.time() + 1)])).text()


def test_the_estimate_grows_when_runs_share_the_cpu(monkeypatch):
    monkeypatch.setattr(admission, "threads_per_run", lambda: 2)
    monkeypatch.setattr(admission, "cores", lambda: 2)
    assert admission.slowdown(1) == 1.0 and admission.slowdown(2) == 2.0 and admission.slowdown(2, threads=1) == 1.0
    tc = _quick()
    alone = admission.expect(tc, executor=FakeExecutor(slots=2))
    shared = admission.expect(tc, executor=FakeExecutor([_run("r0", "running", 1000.0)], slots=2))
    assert shared.wait_s == 0 and shared.run_s == pytest.approx(2 * alone.run_s) and shared.share == pytest.approx(0.5)
    # with one thread per run, two runs fit two cores: no slower
    monkeypatch.setattr(admission, "threads_per_run", lambda: 1)
    assert admission.expect(tc, executor=FakeExecutor([_run("r0", "running", 1000.0)], slots=2)).run_s == \
        pytest.approx(alone.run_s)


def test_the_load_comes_from_our_runs_while_they_train():
    """A run reporting half its quiet examples/s makes every new estimate twice as long, and says so."""
    tc = _quick()
    alone = admission.expect(tc, executor=FakeExecutor())
    spe = 1e-4  # quiet: 10,000 examples/s
    runs = [_run("r0", "running", 10.0, spe=spe, steps=[_step(s, 1000, 5000.0) for s in (20, 40, 60)])]
    busy = admission.expect(tc, executor=FakeExecutor(runs, slots=2), limits=Limits(cpu_slots=2))
    assert busy.source == "runs" and busy.load == pytest.approx(2.0)
    assert "the machine is busy (≈ 2.0× slower than when quiet)" in busy.text()
    # remembered a while for the pages that have no executor at hand (the preset labels)
    assert admission.machine_load().source == "recent"
    assert busy.run_s > alone.run_s


def test_presets_exercises_and_the_text_before_start_come_from_one_function(monkeypatch):
    from cnnlab.ui import train_view

    calls = []
    real = admission.expect_runs

    def spy(tcs, *a, **kw):
        calls.append(len(list(tcs)) if not isinstance(tcs, list) else len(tcs))
        return real(tcs, *a, **kw)

    captions = []
    fake_st = SimpleNamespace(caption=captions.append, warning=captions.append)
    monkeypatch.setattr(admission, "expect_runs", spy)
    monkeypatch.setattr(train_view, "st", fake_st)
    monkeypatch.setattr(train_view, "executor", lambda: FakeExecutor())
    monkeypatch.setattr(train_view, "owner_id", lambda: "me")
    monkeypatch.setattr(train_view, "lang", lambda: "en")
    p = presets.PRESETS["lenet_quick"]
    v = p.values()
    settings = {"arch": v["arch"], "knobs": v["knobs"], "resolution": v["resolution"], "epochs": v["epochs"],
                "lr": v["lr"], "batch_size": v["batch_size"], "optimizer": v["optimizer"], "weight_decay": 0.0,
                "train_size": v["train_size"], "test_size": v["test_size"], "device": "cpu", "seed": 0}
    ex = X.BY_ID["bn_scratch_nn"]

    def three():
        captions.clear()
        train_view.show_estimate(settings)
        return admission.preset_label(p, "en"), X.budget_text(ex, "en", 1, 2), captions[-1]

    quiet = three()
    assert calls == [1, 1, 2], calls  # before Start, the label, the pair (A then B)
    assert "on a quiet machine" in quiet[0] and "on a quiet machine" in quiet[1] and "on a quiet machine" in quiet[2]
    assert quiet[2].startswith("Estimate before Start: ≈ ") and "on this CPU" in quiet[2]
    # the rate this server measures changes: the pair and the text before Start change together, by the same
    # factor; the label stays the quiet figure and says so
    monkeypatch.setattr(admission, "machine_load", lambda executor=None: admission.Load(6.0, "probe"))
    busy = three()
    assert busy[0] == quiet[0]
    for before, after in zip(quiet[1:], busy[1:]):
        assert before != after and "here now" in after and "quiet machine" not in after
    label_s = admission.expect(presets.train_config(p)).total_s
    assert admission.fmt_time(label_s) in busy[2]
    pair = X.budget_estimate(ex)
    assert admission.fmt_time(pair.total_s) in busy[1] and pair.load == 6.0


def test_expected_wait_sums_the_runs_ahead_over_the_slots():
    now = time.time()
    runs = [_run("r0", "running", 100.0, steps=[_step(50, 100, 1e4)], created=now),   # 50 quiet s left
            _run("q1", "queued", 60.0, owner="a", created=now + 1),
            _run("q2", "queued", 30.0, owner="b", created=now + 2)]
    ex = FakeExecutor(runs)
    assert admission.expected_wait(ex, "r0") == 0.0
    assert admission.expected_wait(ex, "q1") == pytest.approx(50.0)
    assert admission.expected_wait(ex, "q2") == pytest.approx(110.0)
    assert admission.expected_wait(ex, "nope") is None
    two = FakeExecutor(runs, slots=2)  # q1 starts at once beside r0; q2 when the first of them ends
    assert admission.expected_wait(two, "q1") == 0.0 and admission.expected_wait(two, "q2") > 0


def test_the_remaining_time_blends_the_measured_eta_with_the_plan():
    est = {"seconds": 100.0, "now_s": 100.0, "train_s_per_example": 1e-4, "test_examples": 0}
    start = SimpleNamespace(epochs=1)

    def view(step, eta):
        return SimpleNamespace(state="running", meta={"estimate": est}, steps=(_step(step, 1000, 1e4, eta),),
                               epochs=(), started=time.time() - 10, start=start)
    early, late = admission.remaining_s(view(10, 400.0)), admission.remaining_s(view(900, 40.0))
    # at 1 % the plan (99 s left) still weighs most; at 90 % the measurement (40 s) does
    assert 99 < early < 400 and abs(early - 99) < abs(early - 400)
    assert 10 < late < 40 and abs(late - 40) < abs(late - 10)
    assert admission.remaining_s(SimpleNamespace(state="done")) is None
