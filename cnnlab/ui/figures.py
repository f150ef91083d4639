"""Plotly figure builders for the pages (pure functions: data in, go.Figure out; no streamlit here).

Each builder takes plain data (probe rows, events, arrays) and the language, so the pages only pass
what they read and show what they get. Keys for st.plotly_chart are chosen by the pages.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..i18n import t

_H = 420
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


def _layout(fig: go.Figure, height: int = _H, **kw) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), **kw)
    return fig


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
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.5, 0.5])
    fig.add_trace(go.Bar(x=x, y=[h * w for _, h, w in chw], name=t("fig.hw", lang), marker_color=COLORS[0],
                         hovertext=hover, hoverinfo="text", text=[f"{h}×{w}" for _, h, w in chw],
                         textposition="outside", cliponaxis=False), row=1, col=1)
    fig.add_trace(go.Bar(x=x, y=[c for c, _, _ in chw], name=t("fig.channels", lang), marker_color=COLORS[1],
                         hovertext=hover, hoverinfo="text", text=[str(c) for c, _, _ in chw],
                         textposition="outside", cliponaxis=False), row=2, col=1)
    fig.update_yaxes(type="log", title_text=t("fig.hw", lang), row=1, col=1)
    fig.update_yaxes(type="log", title_text=t("fig.channels", lang), row=2, col=1)
    fig.update_xaxes(type="category", row=1, col=1)
    fig.update_xaxes(type="category", title_text=t("fig.layer", lang), row=2, col=1)
    if len(x) > 40:  # too many labels to read: keep the hover text, drop the bar labels
        fig.update_traces(text=None)
    return _layout(fig, height=520, showlegend=True, bargap=0.15)


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
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=rf, mode="lines+markers", name=t("fig.rf", lang), line=dict(color=COLORS[2]),
                             hovertext=hover, hoverinfo="text"))
    fig.add_trace(go.Scatter(x=x, y=[input_size] * len(x), mode="lines", name=t("fig.input_size", lang),
                             line=dict(color=COLORS[7], dash="dash"), hoverinfo="skip"))
    fig.update_xaxes(type="category", title_text=t("fig.layer", lang))
    fig.update_yaxes(title_text=t("fig.rf", lang), rangemode="tozero")
    return _layout(fig, height=380)


def training_curves(steps, epochs, steps_per_epoch: int | None, lang: str = "en", test_acc_label: str | None = None
                    ) -> go.Figure:
    """d2l's Animator as one figure: train loss (right axis) and train acc per step, train/test acc per epoch.

    `steps` are StepEnd-like (step, loss, acc), `epochs` EpochEnd-like (epoch, train_acc, test_acc, train_loss);
    the x axis is in epochs (a step s is at s / steps_per_epoch).
    """
    spe = steps_per_epoch or 1
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if steps:
        xs = [s.step / spe for s in steps]
        fig.add_trace(go.Scatter(x=xs, y=[s.loss for s in steps], mode="lines", name=t("fig.train_loss", lang),
                                 line=dict(color=COLORS[0])), secondary_y=True)
        fig.add_trace(go.Scatter(x=xs, y=[s.acc for s in steps], mode="lines", name=t("fig.train_acc", lang),
                                 line=dict(color=COLORS[1], dash="dot")), secondary_y=False)
    if epochs:
        ex = [e.epoch for e in epochs]
        fig.add_trace(go.Scatter(x=ex, y=[e.train_acc for e in epochs], mode="markers",
                                 name=t("fig.train_acc_epoch", lang), marker=dict(color=COLORS[1], size=9)),
                      secondary_y=False)
        fig.add_trace(go.Scatter(x=ex, y=[e.test_acc for e in epochs], mode="lines+markers",
                                 name=test_acc_label or t("fig.test_acc", lang),
                                 line=dict(color=COLORS[2]), marker=dict(size=9)), secondary_y=False)
    fig.update_yaxes(title_text=t("fig.acc", lang), range=[0, 1], secondary_y=False)
    fig.update_yaxes(title_text=t("fig.loss", lang), rangemode="tozero", secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text=t("fig.epoch", lang), rangemode="tozero")
    return _layout(fig)


def compare_curves(series: dict[str, Sequence[tuple[float, float]]], y_title: str, lang: str = "en",
                   y_range=None) -> go.Figure:
    """Several runs on one chart: {run label: [(epoch, value), ...]}."""
    fig = go.Figure()
    for i, (name, pts) in enumerate(series.items()):
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name,
                                 line=dict(color=COLORS[i % len(COLORS)])))
    fig.update_xaxes(title_text=t("fig.epoch", lang))
    fig.update_yaxes(title_text=y_title, range=y_range)
    return _layout(fig)


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
