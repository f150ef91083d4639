"""Plotly figure builders for the pages (pure functions: data in, go.Figure out; no streamlit here).

Each builder takes plain data (probe rows, events, arrays) and the language, so the pages only pass
what they read and show what they get. Keys for st.plotly_chart are chosen by the pages.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import caches
from ..i18n import t

_H = 420
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


def _layout(fig: go.Figure, height: int = _H, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), **kw)
    return fig


def _figure(data: list[dict], height: int = _H, **layout) -> go.Figure:
    """A figure from plain dicts in one validated step, with the layout `_layout` gives. The pages that
    redraw on every knob change or live-run poll use this: plotly's make_subplots / update_* calls cost
    3-4x as much server CPU as building the same figure from its dict (15 ms → 4 ms for a VGG trace),
    and under a class of 30 that is most of a script run."""
    base = dict(height=height, margin=dict(l=10, r=10, t=40, b=10),
                legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return go.Figure(dict(data=data, layout={**base, **layout}))


_SHARED = caches.ByteLRU(16 << 20)   # figures of shared probes, for every session (16 MB of figure JSON at most)


def shared(owner, what: str, build, *options) -> go.Figure:
    """The figure `build()` makes of `owner` (a Probe or its layer tuple, from the probe cache every session
    shares), built once per (owner, what, options) for the whole server: a class stepping through the same
    knob values, or a student coming back to a page, gets the built figure instead of building it again.
    The entry keeps `owner` alive, so while it is cached no other object can carry its id. Anything else
    (a list made for one call) is built each time."""
    if not isinstance(owner, tuple) and not hasattr(owner, "layers"):
        return build()
    import plotly.io as pio

    kept, fig = _SHARED.get_or_make((what, id(owner), *options), lambda: (owner, build()),
                                    lambda v: len(pio.to_json(v[1], validate=False)))
    return fig if kept is owner else build()


def clean(values) -> list:
    """Floats for plotly: NaN/inf (e.g. a batch statistic that was not captured) become gaps (None)."""
    return [None if v is None or v != v or v in (float("inf"), float("-inf")) else v for v in values]


def shape_str(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape) if shape else "—"


def _chw(shape: Sequence[int]) -> tuple[int, int, int]:
    """[C, H, W] → (C, H, W); a flat [F] is F channels of 1×1; anything else is folded into C."""
    if len(shape) >= 3:
        c, h, w = shape[-3], shape[-2], shape[-1]
        return int(c), int(h), int(w)
    if len(shape) == 1:
        return int(shape[0]), 1, 1
    if len(shape) == 2:
        return int(shape[0]), int(shape[1]), 1
    return 1, 1, 1


def row_label(number: int, row) -> str:
    """The label a layer carries everywhere on the Architecture page: '#7 · 2.0.b1_1 (Conv2d)', where 7 is
    the row's number in the layer table (its 1-based position in forward order)."""
    return f"#{number} · {row.name} ({row.type})"


def shape_trace_figure(numbered_rows, input_shape: Sequence[int], lang: str = "en") -> go.Figure:
    """Two stacked bar charts, one bar per layer: top H×W (log), bottom channels C (log).

    `numbered_rows` are (table number, LayerRow) pairs: each bar is labelled with the number and name the
    layer has in the layer table (x = '#7'); the input comes first (x = 'input').
    """
    x = [t("fig.input", lang)] + [f"#{n}" for n, _ in numbered_rows]
    names = [t("fig.input", lang)] + [row_label(n, r) for n, r in numbered_rows]
    shapes = [list(input_shape)] + [list(r.output_shape or []) for _, r in numbered_rows]
    chw = [_chw(s) for s in shapes]
    hover = [f"{n}<br>C×H×W = {c}×{h}×{w}" for n, (c, h, w) in zip(names, chw)]
    labels = len(x) <= 40   # too many labels to read: keep the hover text, drop the bar labels
    bars = [dict(type="bar", x=x, y=[h * w for _, h, w in chw], name=t("fig.hw", lang), xaxis="x", yaxis="y",
                 text=[f"{h}×{w}" for _, h, w in chw] if labels else None),
            dict(type="bar", x=x, y=[c for c, _, _ in chw], name=t("fig.channels", lang), xaxis="x2", yaxis="y2",
                 text=[str(c) for c, _, _ in chw] if labels else None)]
    for bar, color in zip(bars, COLORS):
        bar.update(marker=dict(color=color), hovertext=hover, hoverinfo="text", textposition="outside",
                   cliponaxis=False)
        if bar["text"] is None:
            del bar["text"]
    # two rows sharing the x axis, as make_subplots(rows=2, shared_xaxes=True, vertical_spacing=0.06) lays out
    return _figure(bars, height=520, showlegend=True, bargap=0.15,
                   xaxis=dict(anchor="y", domain=[0.0, 1.0], matches="x2", showticklabels=False, type="category"),
                   yaxis=dict(anchor="x", domain=[0.53, 1.0], type="log", title=dict(text=t("fig.hw", lang))),
                   xaxis2=dict(anchor="y2", domain=[0.0, 1.0], type="category",
                               title=dict(text=t("fig.layer", lang))),
                   yaxis2=dict(anchor="x2", domain=[0.0, 0.47], type="log",
                               title=dict(text=t("fig.channels", lang))))


def receptive_field_figure(numbered_rows, input_size: int, lang: str = "en") -> go.Figure:
    """The receptive field (input pixels) after each conv/pool layer against the input's size.

    `numbered_rows` are (table number, LayerRow) pairs of layers with a receptive field; x = '#7' as in the
    layer table. A dashed line marks the input size: above it, part of the field falls on the padding.
    """
    def one(v):
        return max(v) if isinstance(v, list) else v

    pts = [(n, r) for n, r in numbered_rows if r.receptive_field is not None]
    x = [f"#{n}" for n, _ in pts]
    rf = [one(r.receptive_field) for _, r in pts]
    hover = [f"{row_label(n, r)}<br>RF = {one(r.receptive_field)} px, j = {one(r.jump)} px" for n, r in pts]
    return _figure([dict(type="scatter", x=x, y=rf, mode="lines+markers", name=t("fig.rf", lang),
                         line=dict(color=COLORS[2]), hovertext=hover, hoverinfo="text"),
                    dict(type="scatter", x=x, y=[input_size] * len(x), mode="lines", name=t("fig.input_size", lang),
                         line=dict(color=COLORS[7], dash="dash"), hoverinfo="skip")],
                   height=380, xaxis=dict(type="category", title=dict(text=t("fig.layer", lang))),
                   yaxis=dict(title=dict(text=t("fig.rf", lang)), rangemode="tozero"))


def full_windows(steps: Sequence) -> list:
    """The logged steps whose window is a full one. A step report is the mean over the examples since the last;
    the one at an epoch's end can cover a few steps, or only the last, partial batch (one example, say), and
    plotted it is a jump in the loss that training did not make. Such a short window (under half the usual
    one, counted in examples where the run recorded them, else in steps) is left out of the curve (the epoch's
    own markers carry its figures)."""
    steps = list(steps or [])
    if len(steps) < 3:
        return steps
    if all(getattr(s, "examples", 0) for s in steps):
        sizes = [s.examples for s in steps]
    else:  # a run written before StepEnd carried its examples
        sizes = [steps[0].step] + [b.step - a.step for a, b in zip(steps, steps[1:])]
    usual = sorted(sizes)[len(sizes) // 2]
    return [steps[0]] + [s for s, n in zip(steps[1:], sizes[1:]) if n >= usual / 2]


def training_curves(steps, epochs, steps_per_epoch: int | None, lang: str = "en", test_acc_label: str | None = None
                    ) -> go.Figure:
    """d2l's Animator as one figure: train loss (right axis) and train acc per step, train/test acc per epoch.

    `steps` are StepEnd-like (step, loss, acc), `epochs` EpochEnd-like (epoch, train_acc, test_acc, train_loss);
    the x axis is in epochs (a step s is at s / steps_per_epoch).
    """
    spe = steps_per_epoch or 1
    data = []
    steps = full_windows(steps)
    if steps:
        xs = [s.step / spe for s in steps]
        mode = "lines" if len(steps) > 1 else "markers"  # a run stopped after one logged point still shows it
        data.append(dict(type="scatter", x=xs, y=[s.loss for s in steps], mode=mode, yaxis="y2",
                         name=t("fig.train_loss", lang), line=dict(color=COLORS[0])))
        data.append(dict(type="scatter", x=xs, y=[s.acc for s in steps], mode=mode, yaxis="y",
                         name=t("fig.train_acc", lang), line=dict(color=COLORS[1], dash="dot")))
    if epochs:
        ex = [e.epoch for e in epochs]
        data.append(dict(type="scatter", x=ex, y=[e.train_acc for e in epochs], mode="markers", yaxis="y",
                         name=t("fig.train_acc_epoch", lang), marker=dict(color=COLORS[1], size=9)))
        data.append(dict(type="scatter", x=ex, y=[e.test_acc for e in epochs], mode="lines+markers", yaxis="y",
                         name=test_acc_label or t("fig.test_acc", lang), line=dict(color=COLORS[2]),
                         marker=dict(size=9)))
    for d in data:
        d["xaxis"] = "x"
    # a secondary y axis on the right, as make_subplots(specs=[[{"secondary_y": True}]]) lays out
    return _figure(data, xaxis=dict(anchor="y", domain=[0.0, 0.94], title=dict(text=t("fig.epoch", lang)),
                                    rangemode="tozero"),
                   yaxis=dict(anchor="x", domain=[0.0, 1.0], title=dict(text=t("fig.acc", lang)), range=[0, 1]),
                   yaxis2=dict(anchor="x", overlaying="y", side="right", title=dict(text=t("fig.loss", lang)),
                               rangemode="tozero", showgrid=False))


def compare_curves(series: dict[str, Sequence[tuple[float, float]]], y_title: str, lang: str = "en",
                   y_range=None, height: int = _H) -> go.Figure:
    """Several runs on one chart: {run label: [(epoch, value), ...]}."""
    fig = go.Figure()
    for i, (name, pts) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 line=dict(color=COLORS[i % len(COLORS)])))
    fig.update_xaxes(title_text=t("fig.epoch", lang))
    fig.update_yaxes(title_text=y_title, range=y_range)
    return _layout(fig, height=height, showlegend=True)  # named curves, one run too (plotly hides a lone legend)


def bn_heatmaps(gamma: Sequence[Sequence[float]], beta: Sequence[Sequence[float]], snapshot_labels: Sequence[str],
                lang: str = "en") -> go.Figure:
    """γ and β as heat maps: rows = channels, columns = snapshots (oldest → newest)."""
    # each panel's colour bar sits in the gap to its right, clear of the next panel's axis (γ's bar used to
    # overlap the β panel): panels span [0, 0.38] and [0.62, 1.0]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("bn.gamma", lang), t("bn.beta", lang)),
                        horizontal_spacing=0.24)
    for col, (vals, scale, mid, cbx) in enumerate(((gamma, "Viridis", None, 0.40), (beta, "RdBu", 0.0, 1.02)), 1):
        z = [clean(r) for r in zip(*vals)] if vals else []  # channels × snapshots
        fig.add_trace(go.Heatmap(z=z, x=list(snapshot_labels), y=list(range(len(z))), colorscale=scale, zmid=mid,
                                 colorbar=dict(x=cbx, xanchor="left", len=0.9, thickness=14),
                                 hovertemplate=t("bn.channel", lang) + " %{y}<br>%{x}<br>%{z:.4f}<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(title_text=t("bn.channel", lang), row=1, col=col)
        fig.update_xaxes(title_text=t("bn.snapshot", lang), row=1, col=col)
    return _layout(fig, height=380)


def bn_latest(gamma: Sequence[float], beta: Sequence[float], lang: str = "en") -> go.Figure:
    ch = list(range(len(gamma)))
    fig = go.Figure([go.Bar(x=ch, y=clean(gamma), name=t("bn.gamma", lang), marker_color=COLORS[0]),
                     go.Bar(x=ch, y=clean(beta), name=t("bn.beta", lang), marker_color=COLORS[1])])
    fig.update_xaxes(title_text=t("bn.channel", lang))
    return _layout(fig, height=320, barmode="group")


def bn_stats(layer, lang: str = "en") -> go.Figure:
    """Running mean/var (lines) against the last batch's mean/var (markers), per channel."""
    ch = list(range(len(layer.running_mean)))
    fig = make_subplots(rows=1, cols=2, subplot_titles=(t("bn.running_mean", lang) + " / " + t("bn.batch_mean", lang),
                                                        t("bn.running_var", lang) + " / " + t("bn.batch_var", lang)))
    for col, (run, bat, a, b) in enumerate(((layer.running_mean, layer.batch_mean, "bn.running_mean", "bn.batch_mean"),
                                            (layer.running_var, layer.batch_var, "bn.running_var", "bn.batch_var")), 1):
        fig.add_trace(go.Scatter(x=ch, y=clean(run), mode="lines+markers", name=t(a, lang),
                                 line=dict(color=COLORS[0 if col == 1 else 2])), row=1, col=col)
        fig.add_trace(go.Scatter(x=ch, y=clean(bat), mode="markers", name=t(b, lang),
                                 marker=dict(color=COLORS[1 if col == 1 else 3], symbol="x", size=9)), row=1, col=col)
        fig.update_xaxes(title_text=t("bn.channel", lang), row=1, col=col)
    _layout(fig, height=360)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))  # clear of the subplot titles
    return fig


def image_grid(images, titles: Sequence[str], cols: int = 8, colorscale="gray", height_per_row: int = 150,
               zmin=None, zmax=None) -> go.Figure:
    """A grid of 2-d arrays (H×W) as heat maps with titles (test images, feature maps).

    `colorscale` is one name for all, or a list with one per image."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, (n + cols - 1) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), horizontal_spacing=0.01,
                        vertical_spacing=0.08 if rows > 1 else 0.02)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        scale = colorscale[i] if isinstance(colorscale, (list, tuple)) else colorscale
        fig.add_trace(go.Heatmap(z=img, colorscale=scale, showscale=False, zmin=zmin, zmax=zmax,
                                 hovertemplate="%{z:.3f}<extra></extra>"), row=r + 1, col=c + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor=None)
    fig.update_annotations(font_size=11)
    return _layout(fig, height=max(180, rows * height_per_row + 40), showlegend=False)


def confusion(matrix, labels: Sequence[str], lang: str = "en") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, x=list(labels), y=list(labels), colorscale="Blues", text=matrix,
                               texttemplate="%{text}", hovertemplate=t("runs.true", lang) + " %{y}<br>"
                               + t("runs.pred", lang) + " %{x}<br>%{z}<extra></extra>"))
    fig.update_xaxes(title_text=t("runs.pred", lang))
    fig.update_yaxes(title_text=t("runs.true", lang), autorange="reversed")
    return _layout(fig, height=520)


def probabilities(probs: Sequence[float], labels: Sequence[str], lang: str = "en") -> go.Figure:
    best = max(range(len(probs)), key=lambda i: probs[i]) if len(probs) else -1
    fig = go.Figure(go.Bar(x=list(probs), y=list(labels), orientation="h",
                           marker_color=[COLORS[2] if i == best else COLORS[0] for i in range(len(probs))]))
    fig.update_xaxes(title_text=t("runs.probability", lang), range=[0, 1])
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, height=320, showlegend=False)
