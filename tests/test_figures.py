"""The figures the pages redraw on every knob change or live-run poll are built from dicts in one step
(cnnlab.ui.figures._figure) instead of make_subplots + update_* calls, which cost the server 3-10x the CPU.
Their hand-written subplot layouts must stay what make_subplots lays out, and their content what it was."""
from __future__ import annotations

import pytest

pytest.importorskip("plotly")
from plotly.subplots import make_subplots  # noqa: E402

from cnnlab.caches import CACHE  # noqa: E402
from cnnlab.measure import measure  # noqa: E402
from cnnlab import registry  # noqa: E402
from cnnlab.events import EpochEnd, StepEnd  # noqa: E402
from cnnlab.ui import figures  # noqa: E402
from cnnlab.ui.arch_view import chart_rows  # noqa: E402

AXES = ("anchor", "domain", "matches", "overlaying", "side", "showticklabels")


def _axes(layout) -> dict:
    out = {}
    for name in ("xaxis", "xaxis2", "yaxis", "yaxis2"):
        ax = layout.get(name)
        if ax:
            out[name] = {k: ax[k] for k in AXES if k in ax}
    return out


def test_the_shape_trace_is_laid_out_as_two_rows_sharing_x():
    p = measure(registry.Config("vgg", {"ratio": 2}, 1, 10, 224))
    rows = chart_rows(p.layers, "blocks")
    fig = figures.shape_trace_figure(rows, p.input_shape, "en").to_dict()
    ref = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.5, 0.5]).to_dict()
    assert _axes(fig["layout"]) == _axes(ref["layout"])
    hw, ch = fig["data"]
    assert (hw["xaxis"], hw["yaxis"], ch["xaxis"], ch["yaxis"]) == ("x", "y", "x2", "y2")
    assert hw["x"][0] == "input" and len(hw["x"]) == len(rows) + 1
    assert hw["y"][0] == 224 * 224 and ch["y"][0] == 1 and hw["text"][0] == "224×224"
    assert fig["layout"]["yaxis"]["type"] == fig["layout"]["yaxis2"]["type"] == "log"
    assert fig["layout"]["xaxis2"]["title"]["text"] == "layer"


def test_a_long_trace_drops_its_bar_labels():
    p = measure(registry.Config("densenet", {}, 1, 10, 96))
    rows = chart_rows(p.layers, "layers")
    assert len(rows) > 40
    fig = figures.shape_trace_figure(rows, p.input_shape, "en").to_dict()
    assert all("text" not in bar for bar in fig["data"]) and fig["data"][0]["hovertext"]


def test_training_curves_put_the_loss_on_a_right_hand_axis():
    steps = [StepEnd(i, 100, 1, 2.3 - i / 100, i / 100, 1000.0, 5.0) for i in range(1, 21)]
    epochs = [EpochEnd(1, 3, 1.2, 0.5, 0.45, 3.0, 1000.0)]
    fig = figures.training_curves(steps, epochs, 20, "en").to_dict()
    ref = make_subplots(specs=[[{"secondary_y": True}]]).to_dict()
    assert _axes(fig["layout"]) == _axes(ref["layout"])
    loss, acc, train_ep, test_ep = fig["data"]
    assert loss["yaxis"] == "y2" and {acc["yaxis"], train_ep["yaxis"], test_ep["yaxis"]} == {"y"}
    assert loss["x"][-1] == 1.0 and test_ep["y"] == [0.45]
    assert fig["layout"]["yaxis"]["range"] == [0, 1] and fig["layout"]["yaxis2"]["showgrid"] is False
    assert figures.training_curves([], [], None, "zh").to_dict()["data"] == []


def test_figures_of_a_shared_probe_are_built_once_per_option():
    p = measure(registry.Config("resnet", {}, 1, 10, 96))
    calls = []

    def build(detail):
        calls.append(detail)
        return figures.shape_trace_figure(chart_rows(p.layers, detail), p.input_shape, "en")

    a = figures.shared(p.layers, "test_trace", lambda: build("blocks"), "blocks", "en")
    assert figures.shared(p.layers, "test_trace", lambda: build("blocks"), "blocks", "en") is a
    b = figures.shared(p.layers, "test_trace", lambda: build("layers"), "layers", "en")
    assert b is not a and calls == ["blocks", "layers"]
    # another measurement of the same net (another object: the cache was let go) is another entry; a list is
    # never kept
    CACHE.clear()
    q = measure(registry.Config("resnet", {}, 1, 10, 96))
    assert q is not p
    assert figures.shared(q.layers, "test_trace", lambda: build("blocks"), "blocks", "en") is not a
    rows = list(p.layers)
    figures.shared(rows, "test_trace", lambda: build("blocks"), "blocks", "en")
    figures.shared(rows, "test_trace", lambda: build("blocks"), "blocks", "en")
    assert calls == ["blocks", "layers", "blocks", "blocks", "blocks"]


def test_a_short_window_at_an_epochs_end_is_no_jump_in_the_loss_and_one_point_still_shows():
    """#21 §7: the last partial batch of an epoch, logged alone, plotted as a jump; one logged point, nothing."""
    from types import SimpleNamespace as S

    from cnnlab.ui import figures

    steps = [S(step=s, loss=0.5, acc=0.8) for s in (20, 40, 60, 80, 100, 117)] + [S(step=118, loss=2.5, acc=0.1)]
    fig = figures.training_curves(steps, [], 118)
    loss = fig.data[0]
    assert 2.5 not in list(loss.y) and len(loss.y) == 6  # 117 (17 steps) stays, 118 (one partial batch) goes
    one = figures.training_curves([S(step=20, loss=1.0, acc=0.5)], [], 100)
    assert one.data[0].mode == "markers" and list(one.data[0].y) == [1.0]


def test_a_last_batch_of_one_example_is_no_point_of_its_own_when_every_step_is_logged():
    """#21 §7 with log_every=1 (a small run): each step is its own point, and the epoch's last batch of one
    example is as long in steps as the others; counted in examples it is the short window it is."""
    from types import SimpleNamespace as S

    from cnnlab.ui import figures

    steps = [S(step=s, loss=0.5, acc=0.8, examples=32) for s in range(1, 9)] + [S(step=9, loss=3.0, acc=0.0,
                                                                                  examples=1)]
    loss = figures.training_curves(steps, [], 9).data[0]
    assert 3.0 not in list(loss.y) and len(loss.y) == 8
