"""A run as pages draw it: its status plus its events sorted by kind (no streamlit)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..events import BNSnapshot, EpochEnd, RunEnd, RunFailed, RunStart, StepEnd
from .base import ACTIVE, DONE, RunHandle, handle_id


@dataclass(frozen=True)
class RunView:
    id: str
    label: str
    device: str
    state: str
    position: int | None      # 0 = training now, 1.. = place in the queue, None = finished
    created: float
    started: float | None
    finished: float | None
    start: RunStart | None
    steps: tuple[StepEnd, ...]
    epochs: tuple[EpochEnd, ...]
    bn: tuple[BNSnapshot, ...]
    end: RunEnd | RunFailed | None
    n_events: int
    meta: dict = field(default_factory=dict)
    status_message: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def last_step(self) -> StepEnd | None:
        return self.steps[-1] if self.steps else None

    @property
    def progress(self) -> float:
        if self.state == DONE:
            return 1.0
        s = self.last_step
        return min(1.0, s.step / s.total_steps) if s and s.total_steps else 0.0

    @property
    def run_dir(self) -> str | None:
        for ev in (self.end, self.start):
            if ev is not None and getattr(ev, "run_dir", None):
                return ev.run_dir
        return None

    @property
    def message(self) -> str:
        return self.end.message if isinstance(self.end, RunFailed) else self.status_message


def view(executor, handle: RunHandle | str) -> RunView | None:
    """Status + events of one run, or None if the executor does not know it."""
    st = executor.status(handle_id(handle))
    if st is None:
        return None
    evs = executor.events(st.id, 0)
    start = next((e for e in evs if isinstance(e, RunStart)), None)
    end = next((e for e in reversed(evs) if isinstance(e, (RunEnd, RunFailed))), None)
    return RunView(id=st.id, label=st.label, device=st.device, state=st.state, position=st.position,
                   created=st.created, started=st.started, finished=st.finished, start=start,
                   steps=tuple(e for e in evs if isinstance(e, StepEnd)),
                   epochs=tuple(e for e in evs if isinstance(e, EpochEnd)),
                   bn=tuple(e for e in evs if isinstance(e, BNSnapshot)), end=end, n_events=st.n_events,
                   meta=dict(st.meta), status_message=st.message)
