"""Training presets (cnnlab.presets): labels computed from measured figures, and the quick demo learns."""
import pytest

from cnnlab import presets
from cnnlab.runs import admission
from helpers import needs_fmnist


def test_every_cpu_preset_was_measured_and_is_above_chance():
    data = presets.measured()
    assert data.get("machine", {}).get("date"), "presets_measured.json says when and where it was measured"
    missing = [p.id for p in presets.CPU_PRESETS if p.id not in data["presets"]]
    assert not missing, f"not measured (bench/bench_presets.py --write): {missing}"
    for p in presets.CPU_PRESETS:
        row = data["presets"][p.id]
        assert row["test_acc"] > 0.15, f"{p.id} ends at chance: {row}"
        assert row["epochs"] == p.epochs, f"{p.id} was measured with other settings: {row}"


@pytest.mark.parametrize("p", presets.CPU_PRESETS, ids=lambda p: p.id)
def test_labels_are_computed_from_the_figures(p, monkeypatch):
    """The time is the one estimate (cnnlab.runs.admission.expect) from the measured row: on a quiet machine, the
    row's wall time plus the executor's own part; the accuracy is the measured one rounded down."""
    from cnnlab.runs import admission

    monkeypatch.setenv("CNNLAB_LOAD_PROBE", "0")
    monkeypatch.setattr(admission, "cpu_rate", lambda: 22e9)
    monkeypatch.setattr(admission, "_live", {"factor": 1.0, "at": -1e9})
    fake = {"machine": {"cpu_gmacs": 22.0}, "presets": {p.id: {"wall_s": 95.0, "test_acc": 0.8149}}}
    assert admission.preset_label(p, "en", fake) == f"{p.title_en} (≈ 2 min on a quiet machine · test acc ≥ 0.80)"
    assert admission.preset_label(p, "zh", fake) == f"{p.title_zh} (空闲机器上约 2 分钟 · 测试精度 ≥ 0.80)"
    fake["presets"][p.id]["wall_s"] = 13.2
    assert "≈ 15 s on a quiet machine" in admission.preset_label(p, "en", fake)
    assert admission.preset_label(p, "en", {"presets": {}}) == p.title_en  # not measured: no claim


def test_book_presets_make_no_cpu_claim():
    p = presets.BOOK_PRESETS[0]
    assert admission.preset_label(p, "en", {"presets": {p.id: {"wall_s": 1, "test_acc": 0.9}}}) == p.title_en


@pytest.mark.parametrize("acc,stated", [(0.763, 0.75), (0.75, 0.75), (0.7999, 0.75), (0.1, 0.1), (0.852, 0.85)])
def test_stated_accuracy_rounds_down(acc, stated):
    assert presets.stated_accuracy(acc) == pytest.approx(stated)


@needs_fmnist
def test_the_quick_demo_learns():
    """It ended at chance (0.100) as sigmoid LeNet on 5,000 examples × 2 epochs; now BN-LeNet for one epoch."""
    from cnnlab.engine import run
    from cnnlab.events import RunEnd

    end = [e for e in run(presets.train_config(presets.PRESETS["lenet_quick"]), out_dir=None)
           if isinstance(e, RunEnd)]
    assert end and end[0].test_acc >= 0.6, end
