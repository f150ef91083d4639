"""Costs explained (plain Python; no streamlit): where the parameters and multiply-adds live, and the arithmetic of
MobileNet's blocks with each block's own numbers, equal to what the probe's ledger counts for those layers.

- `by_kind`: params and MACs split by layer kind (conv / linear / norm / other), from the probe's leaf rows.
- `separable_blocks` (MobileNet V1, Howard et al. 2017 §3.1): a standard D_K×D_K convolution costs
  D_K²·M·N·D_F² mult-adds; the depthwise-separable pair costs D_K²·M·D_F² + M·N·D_F²; their ratio is 1/N + 1/D_K².
  (D_F² here is the output map's height × width.)
- `inverted_blocks` (MobileNet V2/V3): 1×1 expansion M→E, k×k depthwise on E, squeeze-and-excite on E
  (1×1 E→S and S→E with biases: 2·E·S + S + E parameters, S = E/r rounded to a multiple of 8, i.e. ≈ 2·E²/r), and
  the 1×1 linear projection E→N, each with its formula and the ledger's count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

KINDS = ("conv", "linear", "norm", "other")


def kind_of(type_name: str) -> str:
    t = type_name.lower()
    if t.startswith("conv") or "conv2d" in t:
        return "conv"
    if t == "linear" or t.endswith("linear"):
        return "linear"
    if "norm" in t:
        return "norm"
    return "other"


def by_kind(rows: Sequence, total_params: int | None = None, total_macs: int | None = None) -> dict[str, dict]:
    """{kind: {"params", "macs", "params_share", "macs_share"}} over the leaf layers. With the totals given,
    anything the leaves do not account for (parameters held by a container) goes to "other", so the kinds
    always sum to the totals."""
    out = {k: {"params": 0, "macs": 0} for k in KINDS}
    for r in rows:
        if not r.is_leaf:
            continue
        k = kind_of(r.type)
        out[k]["params"] += int(r.params or 0)
        out[k]["macs"] += int(r.macs or 0)
    for key, total in (("params", total_params), ("macs", total_macs)):
        if total is not None:
            out["other"][key] += int(total) - sum(v[key] for v in out.values())
    for key in ("params", "macs"):
        s = sum(v[key] for v in out.values())
        for v in out.values():
            v[f"{key}_share"] = v[key] / s if s else 0.0
    return out


def _k(v) -> int:
    return int(v[0] if isinstance(v, (list, tuple)) else v)


def _children(rows: Sequence, parent) -> list:
    pre = parent.name + "."
    return [r for r in rows if r.name.startswith(pre) and r.is_leaf]


@dataclass(frozen=True)
class SeparableCost:
    block: str
    M: int            # input channels
    N: int            # output channels
    D_K: int          # kernel size
    H: int            # output map height
    W: int            # output map width
    standard: int     # D_K²·M·N·D_F²
    depthwise: int    # D_K²·M·D_F²
    pointwise: int    # M·N·D_F²
    ledger: int       # the probe's MACs of the block's two convolutions

    @property
    def separable(self) -> int:
        return self.depthwise + self.pointwise

    @property
    def ratio(self) -> float:
        return self.separable / self.standard

    @property
    def ratio_formula(self) -> float:
        return 1 / self.N + 1 / self.D_K ** 2

    def formulas(self) -> dict[str, str]:
        f = f"{self.H}·{self.W}" if self.H != self.W else f"{self.H}²"
        return {
            "standard": f"D_K²·M·N·D_F² = {self.D_K}²·{self.M}·{self.N}·{f} = {self.standard:,}",
            "depthwise": f"D_K²·M·D_F² = {self.D_K}²·{self.M}·{f} = {self.depthwise:,}",
            "pointwise": f"M·N·D_F² = {self.M}·{self.N}·{f} = {self.pointwise:,}",
            "ratio": f"1/N + 1/D_K² = 1/{self.N} + 1/{self.D_K ** 2} = {self.ratio_formula:.4f}",
        }


def separable_blocks(rows: Sequence) -> list[SeparableCost]:
    """Every depthwise-separable block of the probe's rows, with the paper's formulas filled in."""
    out = []
    for r in rows:
        if r.type != "DepthwiseSeparable":
            continue
        convs = [c for c in _children(rows, r) if kind_of(c.type) == "conv"]
        dw = next((c for c in convs if (c.groups or 1) > 1), None)
        pw = next((c for c in convs if c is not dw and _k(c.kernel_size) == 1), None)
        if dw is None or pw is None or not dw.input_shape or not pw.output_shape:
            continue
        M, N, D_K = dw.input_shape[0], pw.output_shape[0], _k(dw.kernel_size)
        H, W = dw.output_shape[1], dw.output_shape[2]
        out.append(SeparableCost(block=r.name, M=M, N=N, D_K=D_K, H=H, W=W, standard=D_K * D_K * M * N * H * W,
                                 depthwise=D_K * D_K * M * H * W, pointwise=M * N * H * W,
                                 ledger=int(dw.macs or 0) + int(pw.macs or 0)))
    return out


@dataclass(frozen=True)
class Part:
    role: str         # expand | depthwise | se | project
    formula: str      # with the block's own numbers
    macs: int         # by the formula
    params: int       # by the formula (convolution weights; SE with its biases)
    ledger_macs: int  # what the probe counts for these layers
    ledger_params: int


@dataclass(frozen=True)
class InvertedCost:
    block: str
    M: int
    E: int
    N: int
    k: int
    parts: tuple[Part, ...]


def inverted_blocks(rows: Sequence) -> list[InvertedCost]:
    """Every inverted-residual block (MobileNet V2/V3), split into expansion, depthwise, SE and projection."""
    out = []
    for r in rows:
        if r.type != "InvertedResidual":
            continue
        kids = _children(rows, r)
        convs = [c for c in kids if kind_of(c.type) == "conv"]
        se = [c for c in convs if ".fc" in c.name]
        main = [c for c in convs if c not in se]
        dw = next((c for c in main if (c.groups or 1) > 1), None)
        if dw is None or not r.input_shape or not r.output_shape:
            continue
        i = main.index(dw)
        expand = main[i - 1] if i > 0 else None
        project = main[i + 1] if i + 1 < len(main) else None
        M, E, N, k = r.input_shape[0], dw.input_shape[0], r.output_shape[0], _k(dw.kernel_size)
        parts = []
        if expand is not None:
            h, w = expand.output_shape[1], expand.output_shape[2]
            macs = M * E * h * w
            parts.append(Part("expand", f"M·E·H·W = {M}·{E}·{h}·{w} = {macs:,}", macs, M * E,
                              int(expand.macs or 0), int(expand.params or 0)))
        h, w = dw.output_shape[1], dw.output_shape[2]
        macs = k * k * E * h * w
        parts.append(Part("depthwise", f"k²·E·H·W = {k}²·{E}·{h}·{w} = {macs:,}", macs, k * k * E,
                          int(dw.macs or 0), int(dw.params or 0)))
        if len(se) == 2:
            S = se[0].output_shape[0]
            params = 2 * E * S + S + E
            parts.append(Part("se", f"2·E·S + S + E = 2·{E}·{S} + {S} + {E} = {params:,} (S = E/r → {S})", params,
                              params, sum(int(c.macs or 0) for c in se), sum(int(c.params or 0) for c in se)))
        if project is not None:
            h, w = project.output_shape[1], project.output_shape[2]
            macs = E * N * h * w
            parts.append(Part("project", f"E·N·H·W = {E}·{N}·{h}·{w} = {macs:,}", macs, E * N,
                              int(project.macs or 0), int(project.params or 0)))
        out.append(InvertedCost(block=r.name, M=M, E=E, N=N, k=k, parts=tuple(parts)))
    return out
