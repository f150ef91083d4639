"""The memory budget of a public instance, checked *before* the work it guards.

One budget (``$CNNLAB_MEM_BUDGET_MB``, default 2048 MB) bounds what one request may allocate on the server
when it builds a real model outside training (loading a saved run). The figures come from the config's
measurement (cnnlab.measure: the model on the *meta* device, no weights allocated), so refusing a model costs
a fraction of a second, and every refusal is one sentence (:class:`LimitError`, a KnobError, so pages show it
with st.error and the CLI exits 2). Training runs are admitted apart (cnnlab.runs.admission).

No streamlit here; torch only.
"""
from __future__ import annotations

from .caches import env_mb
from .errors import LimitError
from .i18n import msg
from .measure import Footprint, measure
from .registry import Config
from .units import fmt_bytes, fmt_count

DEFAULT_BUDGET_MB = 2048


def budget_bytes() -> int:
    """What one request may allocate on the server: $CNNLAB_MEM_BUDGET_MB (default 2048) MB."""
    return env_mb("CNNLAB_MEM_BUDGET_MB", DEFAULT_BUDGET_MB) << 20


def check_model(cfg: Config, *, batch: int = 1, budget: int | None = None) -> Footprint:
    """Before building `cfg` for real: it must fit its input, and its weights and the activations of `batch`
    samples must fit the memory budget. Returns the Footprint; raises InputTooSmall or LimitError (one sentence)."""
    budget = budget_bytes() if budget is None else int(budget)
    fp = measure(cfg).check().footprint
    mb = fmt_bytes(budget)
    if fp.weight_bytes > budget:
        raise LimitError(msg("msg.lim_weights", arch=cfg.arch, res=cfg.resolution, params=fmt_count(fp.params),
                             weights=fmt_bytes(fp.weight_bytes), budget=mb))
    if fp.activation_bytes is not None and fp.bytes_for(batch) > budget:
        raise LimitError(msg("msg.lim_memory" if batch != 1 else "msg.lim_memory_1", arch=cfg.arch,
                             res=cfg.resolution, needs=fmt_bytes(fp.bytes_for(batch)), batch=batch, budget=mb))
    return fp


def batch_for(fp: Footprint, budget: int | None = None, most: int = 512) -> int:
    """The largest inference batch (1..most) whose activations fit in half the budget beside the weights."""
    budget = budget_bytes() if budget is None else int(budget)
    per = max(1, fp.activation_bytes or 1)
    room = max(0, budget - fp.weight_bytes) // 2
    return int(max(1, min(most, room // per)))
