"""A training run's memory, term by term, as a worker process's peak resident set (VmHWM) will show it (#23 §4).

A worker's peak is the sum of what it holds when the run's evaluation ends, because the CPU allocator keeps freed
pages (cnnlab.device.tune_cpu_allocator raises glibc's trim and mmap thresholds; measured: an evaluation batch
larger than the training batch lands on top of the training step's freed memory, not in it). The terms:

* ``process``      the warm worker before any run: Python, torch and cnnlab imported, the warm-up's LeNet steps
                   (cnnlab.runs.worker._warm) — its resident set, shared library pages included, as VmHWM counts
                   them (measured on the 2-core dev machine, torch 2.14.1+cu130 training on the CPU: 725 MiB
                   without the raw data, since cnnlab.data reads the IDX files itself; 749 MiB while the worker
                   imported torchvision to read them; another torch build or machine may differ);
* ``raw_data``     Fashion-MNIST read once as uint8 (+ labels), and the subset's copies when a subset is taken;
* ``data``         the train and test tensors at the run's resolution (float32, or uint8 beyond
                   cnnlab.data.FLOAT_BUDGET_BYTES);
* ``resize_work``  one chunk of cnnlab.data._resize's float work space (at most RESIZE_CHUNK_BYTES);
* ``weights``, ``gradients``, ``optimizer`` (its state: SGD none, Adam 2 × weights);
* ``activations``  one training step's peak on the meta device (the batch, what autograd saves for backward,
                   the backward's temporaries), × TRAIN_KERNEL_FACTOR for the CPU kernels' own work space
                   (oneDNN reorders, layout copies), less the gradients counted apart;
* ``eval_batch``   one evaluation batch's peak on the meta device under inference_mode, × EVAL_KERNEL_FACTOR;
* ``slack``        the allocator's leeway: ALLOCATOR_SLACK × the evaluation's transient, which lands on top of the
                   training step's freed blocks and does not always reuse them: the same run (VGG ratio 64, fc 16,
                   600², batch 1, 768 test images) peaked at 2.4, 2.7 and 3.3 GB in three runs on this machine (the
                   last in a clean-clone CI under load), all from one estimate of the other terms (2.4 GB). A slack
                   on the training step's transient instead (when it is the larger) put MobileNet V2 at α 2.0
                   +20 … +26 % over its peak (2.3–2.4 GB measured, 2.9 GB estimated); on the evaluation's: +9 … +16 %.

The two factors come from real workers' VmHWM (the runs of tests/test_admission_rss.py: the CPU presets and three
extreme settings): a training step's growth of the resident set was 0.6–1.9 × its meta trace (most 1.4–1.6 ×: the
larger steps), an evaluation's 0.8–1.6 ×; with them every case landed within −5 % … +19 % of its peak, two test
runs at once on 2 cores (2026-12-05). The meta trace is cached per (model, batch sizes, storage); a large model
takes up to 2 s the first time.
"""
from __future__ import annotations

import math
import threading
import weakref

N_TRAIN, N_TEST = 60000, 10000
PROCESS_BYTES = 725 * 2**20
RAW_DATA_BYTES = (N_TRAIN + N_TEST) * (28 * 28 + 8 * 2)   # images + int64 labels (read, then .long())
TRAIN_KERNEL_FACTOR = 1.45
EVAL_KERNEL_FACTOR = 1.2
ALLOCATOR_SLACK = 0.4


def _live_bytes_mode():
    """A dispatch mode that counts the bytes of the storages created under it that are still alive, and their peak."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class LiveBytes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.live = self.peak = 0
            self.refs: dict[int, weakref.ref] = {}
            self.lock = threading.Lock()

        def _gone(self, key: int, n: int) -> None:
            with self.lock:
                if self.refs.pop(key, None) is not None:
                    self.live -= n

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    key = st._cdata
                    with self.lock:
                        if key not in self.refs:
                            n = st.nbytes()
                            self.live += n
                            self.refs[key] = weakref.ref(st, lambda _r, key=key, n=n: self._gone(key, n))
            self.peak = max(self.peak, self.live)
            return out

    return LiveBytes()


def step_peaks(cfg, batch: int, eval_batch: int, eval_input_copied: bool) -> tuple[int, int]:
    """(one training step's peak bytes, one evaluation batch's peak bytes) of `cfg` on the meta device, above the
    weights. `eval_input_copied`: the stored test set is uint8, so each evaluation batch is a float copy. Kept in
    the shared cache beside the config's measurement."""
    from ..caches import CACHE
    from ..measure import config_key

    key = ("step_peaks",) + config_key(cfg) + (int(batch), int(eval_batch), bool(eval_input_copied))
    return CACHE.get_or_make(key, lambda: _step_peaks(cfg, int(batch), int(eval_batch), bool(eval_input_copied)),
                             lambda _: 64)


def _step_peaks(cfg, batch: int, eval_batch: int, eval_input_copied: bool) -> tuple[int, int]:
    import torch
    from torch.nn import functional as F

    with torch.device("meta"):
        model = cfg.build()
    c, hw = cfg.in_channels, cfg.input_hw
    model.train()
    mode = _live_bytes_mode()
    with mode:
        x = torch.empty(batch, c, hw, hw, device="meta")          # the batch (index_select: a copy)
        y = torch.zeros(batch, dtype=torch.long, device="meta")
        F.cross_entropy(model(x), y).backward()
        del x, y
    train = mode.peak
    for p in model.parameters():
        p.grad = None
    model.eval()
    mode = _live_bytes_mode()
    with torch.inference_mode(), mode:
        x = (torch.empty(eval_batch, 1, hw, hw, dtype=torch.uint8, device="meta").float()
             if eval_input_copied else None)
        if x is None:
            x = torch.empty(eval_batch, 1, hw, hw, device="meta")   # a view of the stored set: not counted
            mode.live = mode.peak = 0
        (model(x.expand(-1, c, -1, -1)).argmax(dim=1) == 0).sum()
    return int(train), int(mode.peak)


def memory_parts(tc, cfg, params: int, *, cuda: bool, act_fallback: int = 0) -> dict:
    """The named terms (bytes) of a resolved TrainConfig's peak memory on the CPU (see the module's text); on CUDA the
    device's memory: no process or raw data (host memory), the meta traces as they are (no CPU kernels' factor)."""
    from ..data import FLOAT_BUDGET_BYTES, RESIZE_CHUNK_BYTES

    res = cfg.input_hw
    n_train = N_TRAIN if tc.train_size is None else min(tc.train_size, N_TRAIN)
    n_test = N_TEST if tc.test_size is None else min(tc.test_size, N_TEST)
    bs = min(tc.batch_size or cfg.spec.training.batch_size, n_train)
    eval_bs = min(tc.eval_batch_size or (1024 if cuda else 256), n_test)

    def as_float(n: int) -> bool:
        return n * res * res * 4 <= FLOAT_BUDGET_BYTES

    def resident(n: int) -> int:
        return n * res * res * (4 if as_float(n) else 1)

    per_image = 4 * (res * res + 28 * 28)
    resize_work = per_image * min(max(n_train, n_test), max(1, RESIZE_CHUNK_BYTES // per_image))
    subset = (n_train * 28 * 28 if n_train < N_TRAIN else 0) + (n_test * 28 * 28 if n_test < N_TEST else 0)
    weights = params * 4
    optimizer = {"sgd": 0, "adam": 2}.get(getattr(tc, "optimizer", "sgd"), 1) * weights
    try:
        train, ev = step_peaks(cfg, bs, eval_bs, not as_float(n_test))
    except Exception:  # noqa: BLE001 - a model the meta trace cannot run: the probe's outputs × 2 for backward
        train, ev = act_fallback * bs * 2 + weights, 0
    factor_t, factor_e = (1.0, 1.0) if cuda else (TRAIN_KERNEL_FACTOR, EVAL_KERNEL_FACTOR)
    return {
        "process": 0 if cuda else PROCESS_BYTES,
        "raw_data": 0 if cuda else RAW_DATA_BYTES + subset,
        "data": resident(n_train) + resident(n_test),
        "resize_work": resize_work,                 # on the run's device
        "weights": weights,
        "gradients": weights,
        "optimizer": optimizer,
        "activations": max(0, int(math.ceil(train * factor_t)) - weights),
        "eval_batch": int(math.ceil(ev * factor_e)),
        "slack": 0 if cuda else int(ALLOCATOR_SLACK * ev * factor_e),
    }
