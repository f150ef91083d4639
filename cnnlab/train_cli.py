"""`python -m cnnlab train ARCH ...`: train on Fashion-MNIST with a progress bar, or JSON lines with --json.
`python -m cnnlab bench ...`: bench/bench_d2l.py (d2l's train_ch6 vs this engine).

Exit status: 0 finished; 1 the run failed (NaN loss, out of memory, no data, ...); 2 bad arguments
(one line on stderr); 130 stopped with Ctrl-C (the checkpoint is kept: a first Ctrl-C asks the
engine to stop at the next step, a second one interrupts at once).
"""
from __future__ import annotations

import json
import signal
import sys
import threading

from .i18n import message_of
from .registry import KnobError, parse_sets

EXIT_FAILED = 1
EXIT_STOPPED = 130


def add_parsers(sub, add_model_args) -> None:
    p = sub.add_parser("train", help="train a model on Fashion-MNIST (progress bar, or JSON lines with --json)",
                       description="Train a model on Fashion-MNIST with the book's recipe unless told otherwise. "
                                   "Without --resolution the book's training resolution is used.")
    add_model_args(p)
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the book's, 10)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the book's for the model)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the book's for the model)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--train-size", type=int, default=None, help="train on a stratified subset of N examples")
    p.add_argument("--test-size", type=int, default=None, help="test on a stratified subset of N examples")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20, help="steps between progress reports")
    p.add_argument("--bn-every", type=int, default=50, help="steps between BatchNorm snapshots")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (long GPU runs)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision: auto = bf16 on GPUs of compute capability 8.0+, fp16 with a gradient "
                        "scaler on 7.x, off below and on the CPU (default auto)")
    p.add_argument("--no-fast-cpu", dest="fast_cpu", action="store_false", default=None,
                   help="train with torch's own CPU kernels only (cnnlab.cpu_fast off; also CNNLAB_FAST_CPU=0)")
    p.add_argument("--download", action="store_true",
                   help="if Fashion-MNIST is not installed, try torchvision's download (also CNNLAB_DOWNLOAD=1)")
    p.add_argument("--out", default="checkpoints", help="folder for run folders (default checkpoints)")
    p.add_argument("--no-save", action="store_true", help="do not write a run folder")
    p.add_argument("--json", action="store_true", help="one JSON object per line per event")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="train in a worker process of the local executor, or on Ray (CNNLAB_RAY_ADDRESS); "
                        "default: in this process")
    p.set_defaults(func=cmd_train)

    b = sub.add_parser("bench", help="d2l's train_ch6 vs this engine, side by side (needs bench/setup_peer.sh)",
                       description="Runs bench/bench_d2l.py: d2l's own train_ch6 and this engine on the same "
                                   "model, data and epochs; prints examples/s, wall seconds, accuracy and the ratio.")
    for flag, kw in _BENCH_OPTIONS:
        b.add_argument(flag, **kw)
    b.set_defaults(func=cmd_bench)


_BENCH_OPTIONS = (
    ("--models", {"help": "comma-separated: lenet, bn_lenet, bn_lenet_scratch (default lenet,bn_lenet)"}),
    ("--epochs", {"type": int, "help": "epochs (default 10)"}),
    ("--seeds", {"help": "comma-separated seeds (default 0)"}),
    ("--peer-python", {"help": "Python of the scratch venv with d2l (default .peer-venv/bin/python)"}),
    ("--peer-script", {"help": "d2l peer script (default ../shared/bench/d2l_peer.py)"}),
    ("--data-dir", {"help": "Fashion-MNIST folder for the peer"}),
    ("--threads", {"type": int, "help": "CPU threads for this engine"}),
    ("--markdown", {"help": "append the table as markdown to this file"}),
    ("--json-out", {"help": "write the JSON result to this file"}),
)


def cmd_bench(args) -> int:
    import os
    import runpy

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "bench_d2l.py")
    if not os.path.isfile(script):
        raise KnobError(f"the benchmark script {script} is not here (it ships with the source tree, not the package)")
    argv = []
    for flag, _ in _BENCH_OPTIONS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            argv += [flag, str(value)]
    return int(runpy.run_path(script)["main"](argv) or 0)


def train_config_from_args(args):
    """The resolved TrainConfig for parsed `train` arguments (raises KnobError with one line)."""
    from .device import DeviceError, resolve_device
    from .engine import TrainConfig
    from .registry import get_spec

    recipe = get_spec(args.arch).recipe()
    tc = TrainConfig(model=args.arch, knobs=parse_sets(args.sets), in_channels=args.in_channels,
                     num_classes=args.num_classes, resolution=args.resolution,
                     epochs=recipe.epochs if args.epochs is None else args.epochs, lr=args.lr,
                     batch_size=args.batch_size, optimizer=args.optimizer, weight_decay=args.weight_decay,
                     train_size=args.train_size, test_size=args.test_size, device=args.device, seed=args.seed,
                     log_every=args.log_every, bn_every=args.bn_every, compile=args.compile,
                     fast_cpu=args.fast_cpu, amp=args.amp).resolved()
    try:
        from .device import choose_amp
        choose_amp(resolve_device(tc.device), tc.amp)
    except (DeviceError, RuntimeError) as e:
        raise KnobError(message_of(e)) from None
    return tc


class _Interrupts:
    """First Ctrl-C sets the stop Event (the engine stops at the next step and keeps the checkpoint);
    the second raises KeyboardInterrupt as usual."""

    def __init__(self, stop: threading.Event):
        self.stop, self.count, self.previous = stop, 0, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.count += 1
        self.stop.set()
        if self.count > 1:
            raise KeyboardInterrupt
        sys.stderr.write("\nstopping at the next step and keeping the checkpoint (Ctrl-C again to abort)\n")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def check_out_dir(out: str) -> None:
    """--out must be a folder we can write in, or one we can create: raises KnobError (exit 2) before any
    training starts, instead of a failed run (exit 1) after the data are loaded."""
    import os

    path = os.path.abspath(out)
    probe = path
    while not os.path.exists(probe):  # the nearest existing ancestor is where the folder would be made
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(path) and not os.path.isdir(path):
        raise KnobError(f"--out must be a folder, but {out!r} is a file")
    if not os.path.isdir(probe):
        raise KnobError(f"--out {out!r} cannot be created: {probe!r} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        where = "" if probe == path else f" ({probe!r} is not writable)"
        raise KnobError(f"--out {out!r} is not a folder this user can write in{where}")


def _in_process(tc, stop, out_dir):
    from .engine import run
    from .events import RunStart
    from .runs.recovery import mark_alive

    for ev in run(tc, stop, out_dir):
        if isinstance(ev, RunStart):
            mark_alive(ev.run_dir)  # so a server starting meanwhile does not mark this run interrupted
        yield ev


def _through_executor(kind: str, tc, stop, out_dir):
    """Submit to a LocalExecutor / RayExecutor and yield its events as they arrive (Ctrl-C: stop the run)."""
    import os
    import secrets
    import time

    from .runs import RunRefused, get_executor

    owner = f"cli-{os.getpid()}-{secrets.token_hex(4)}"
    ex = get_executor(kind, out_dir=out_dir)
    try:
        try:
            h = ex.submit(tc, owner, label=f"{tc.model.arch} (CLI)")
        except RunRefused as e:
            raise KnobError(message_of(e)) from None
        since, asked = 0, False
        while True:
            if stop.is_set() and not asked:
                ex.stop(h, owner)
                asked = True
            evs = ex.events(h, since)
            since += len(evs)
            yield from evs
            if any(e.kind in ("run_end", "run_failed") for e in evs):
                return
            time.sleep(0.05)
    finally:
        ex.shutdown()


def cmd_train(args) -> int:
    tc = train_config_from_args(args)
    if not args.no_save:
        check_out_dir(args.out)
    if args.download:
        import os
        os.environ["CNNLAB_DOWNLOAD"] = "1"
    stop = threading.Event()
    out_dir = None if args.no_save else args.out
    if args.executor and out_dir is None:
        raise KnobError("--no-save works only in-process (without --executor): executors always keep run folders")
    code = EXIT_FAILED
    with _Interrupts(stop) as interrupts:
        try:
            events = _through_executor(args.executor, tc, stop, out_dir) if args.executor \
                else _in_process(tc, stop, out_dir)
            if args.json:
                code = _run_json(events)
            else:
                code = _run_human(events, tc)
        except KeyboardInterrupt:
            return EXIT_STOPPED
    if code == EXIT_FAILED and interrupts.count:
        return EXIT_STOPPED
    return code


def _run_json(events) -> int:
    from .checkpoint import json_safe

    code = EXIT_FAILED
    for ev in events:
        sys.stdout.write(json.dumps(json_safe(ev.to_dict(), digits=None), ensure_ascii=False) + "\n")
        sys.stdout.flush()
        if ev.kind == "run_end":
            code = 0
        elif ev.kind == "run_failed":
            code = EXIT_STOPPED if ev.reason == "stopped" else EXIT_FAILED
    return code


def _run_human(events, tc) -> int:
    from tqdm import tqdm

    bar = None
    code = EXIT_FAILED
    try:
        for ev in events:
            if ev.kind == "run_start":
                knobs = ", ".join(f"{k}={v}" for k, v in ev.knobs.items()) or "no knobs"
                amp = f" ({ev.amp} autocast)" if ev.amp != "off" else ""
                print(f"{ev.arch} ({knobs}) on {ev.device}{amp}: {ev.params:,} parameters; {ev.epochs} epochs of "
                      f"{ev.train_size:,} examples, batch {ev.batch_size}, {ev.optimizer} lr {ev.lr:g}"
                      + (f"; saving to {ev.run_dir}" if ev.run_dir else ""), flush=True)
                if ev.device_note:
                    print(f"not on the GPU: {ev.device_note}", flush=True)
                bar = tqdm(total=ev.epochs * ev.steps_per_epoch, unit="step", dynamic_ncols=True, file=sys.stderr,
                           bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")
            elif ev.kind == "step_end" and bar is not None:
                bar.update(ev.step - bar.n)
                bar.set_description(f"epoch {ev.epoch}", refresh=False)
                bar.set_postfix_str(f"loss {ev.loss:.3f}, acc {ev.acc:.3f}, {ev.examples_per_s:,.0f} ex/s")
            elif ev.kind == "compiling":
                line = (f"compiled in {ev.wall_s:.1f} s" if ev.done else
                        f"compiling the model (torch.compile, {ev.backend}{' ' + ev.mode if ev.mode else ''}); "
                        "the first step can take minutes ...")
                (bar.write(line, file=sys.stderr) if bar is not None else print(line, file=sys.stderr, flush=True))
            elif ev.kind == "epoch_end":
                line = (f"epoch {ev.epoch}/{ev.epochs}: train loss {ev.train_loss:.3f}, train acc {ev.train_acc:.3f}, "
                        f"test acc {ev.test_acc:.3f}, {ev.examples_per_s:,.0f} examples/s, {ev.wall_s:.1f} s")
                (bar.write(line, file=sys.stdout) if bar is not None else print(line, flush=True))
            elif ev.kind == "run_end":
                if bar is not None:
                    bar.close()
                    bar = None
                print(f"done: test acc {ev.test_acc:.3f}, train acc {ev.train_acc:.3f} after {ev.epochs} epochs "
                      f"in {ev.wall_s:.1f} s" + (f"; saved to {ev.run_dir}" if ev.run_dir else ""), flush=True)
                code = 0
            elif ev.kind == "run_failed":
                if bar is not None:
                    bar.close()
                    bar = None
                where = f"; checkpoint kept in {ev.run_dir}" if ev.run_dir else ""
                sys.stderr.write(f"run {ev.reason.replace('_', ' ')}: {ev.message}{where}\n")
                code = EXIT_STOPPED if ev.reason == "stopped" else EXIT_FAILED
    finally:
        if bar is not None:
            bar.close()
    return code
