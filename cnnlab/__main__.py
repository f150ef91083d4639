"""CLI: python -m cnnlab archs | trace | train | bench | devices | export.

Bad input exits 2 with one line on stderr (never a traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import train_cli
from .export import cli as export_cli
from .registry import KnobError, format_value, parse_sets


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line and exits 2."""

    def error(self, message):  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def add_model_args(p: argparse.ArgumentParser, resolution_default=None) -> None:
    p.add_argument("arch", help="architecture name (see `archs`)")
    p.add_argument("--set", dest="sets", action="append", metavar="KNOB=VALUE", default=[],
                   help="set a knob; repeat for several")
    p.add_argument("--in-channels", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--resolution", type=int, default=resolution_default,
                   help="input height = width (default: the book's resolution for the model)")


def config_from_args(args):
    from .measure import fitting
    return fitting(args.arch, parse_sets(args.sets), in_channels=args.in_channels,
                   num_classes=args.num_classes, resolution=args.resolution)


def cmd_archs(args) -> int:
    from .registry import ARCHS, arch_names
    names = arch_names()
    if args.json:
        out = [{"name": n, "title": ARCHS[n].title_en, "title_zh": ARCHS[n].title_zh,
                "book_resolution": ARCHS[n].book_resolution, "source": ARCHS[n].source,
                "knobs": [k.as_dict() for k in ARCHS[n].knobs]} for n in names]
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    for n in names:
        s = ARCHS[n]
        print(f"{n:<14} {s.title_en} — book resolution {s.book_resolution}; {s.source}")
        for k in s.knobs:
            print(f"    {k.name:<14} default {format_value(k.default):<10} {k.range_text()}: {k.help_en}")
    return 0



def _window_text(r) -> str:
    """'11/4/1' (kernel/stride/padding), with ' d2' for a dilation and ' g32' for groups when not 1."""
    if r.kernel_size is None:
        return ""
    def f(v):
        return "×".join(map(str, v)) if isinstance(v, list) else str(v)
    s = f"{f(r.kernel_size)}/{f(r.stride)}/{f(r.padding)}"
    if r.dilation not in (None, 1):
        s += f" d{f(r.dilation)}"
    if r.groups not in (None, 1):
        s += f" g{r.groups}"
    return s


def _print_rows(rows) -> None:
    w = max([len("  " * (r.depth - 1) + r.name) for r in rows] + [5]) + 2
    print(f"{'layer':<{w}} {'type':<20} {'output shape':<16} {'k/s/p':<12} {'RF':>5} {'params':>12} {'MACs':>14}")
    for r in rows:
        name = "  " * (r.depth - 1) + r.name
        shape = "×".join(map(str, r.output_shape)) if r.output_shape is not None else "—"
        rf = r.receptive_field
        rf = "" if rf is None else ("×".join(map(str, rf)) if isinstance(rf, list) else str(rf))
        macs = "" if r.macs is None else f"{r.macs:,}"
        print(f"{name:<{w}} {r.type:<20} {shape:<16} {_window_text(r):<12} {rf:>5} {r.params:>12,} {macs:>14}")


def cmd_trace(args) -> int:
    """Layer table with each layer's arithmetic (kernel/stride/padding, receptive field), and the cost.

    When the input gets too small inside the network, the trace up to that layer goes to stdout (text, or
    JSON with "error" and "too_small"), the one-line error to stderr, and the exit status is 2.
    """
    from .errors import InputTooSmall
    from .measure import measure
    from .probe import human, output_size_formula
    from .registry import resolve

    loose = resolve(args.arch, parse_sets(args.sets), in_channels=args.in_channels, num_classes=args.num_classes,
                    resolution=args.resolution)
    m = measure(loose)
    try:
        m.check()
    except InputTooSmall as e:
        rows = m.layers
        if args.json:
            print(json.dumps({"arch": loose.arch, "knobs": loose.to_dict()["knobs"], "input": list(loose.input_shape),
                              "error": str(e), "too_small": {"layer": e.layer, "type": e.layer_type,
                                                             "input_hw": list(e.input_hw or []),
                                                             "formula": e.formula},
                              "layers": [r.to_dict() for r in rows]}, ensure_ascii=False))
        else:
            print(f"{loose.arch} on input {'×'.join(map(str, loose.input_shape))}: the trace up to where the "
                  "input gets too small")
            if rows:
                _print_rows(rows)
                last = rows[-1]
                formula = output_size_formula(last)
                if formula:
                    print(f"{last.name} ({last.type}): {formula}")
            sys.stdout.flush()
        sys.stderr.write(f"error: {e}\n")
        return 2
    p, cfg = m, loose
    if args.json:
        out = {"arch": cfg.arch, "knobs": cfg.to_dict()["knobs"], "input": list(cfg.input_shape),
               **p.cost.to_dict(), "layers": [r.to_dict() for r in p.layers]}
        print(json.dumps(out))
        return 0
    knobs = ", ".join(f"{k}={format_value(v)}" for k, v in cfg.knobs.items()) or "no knobs"
    print(f"{cfg.arch} ({knobs}) on input {'×'.join(map(str, cfg.input_shape))}")
    _print_rows(p.layers)
    c = p.cost
    print(f"params {c.params:,} ({human(c.params)}), trainable {c.trainable_params:,}; "
          + (f"MACs {c.macs:,} ({human(c.macs)})" if c.macs is not None else "MACs unknown (torchinfo is not installed)")
          + f"; activations {human(c.activation_bytes, 'B')} per sample")
    print("k/s/p: kernel/stride/padding (d: dilation, g: groups); RF: receptive field in input pixels, "
          "r_out = r_in + (k − 1)·d·j_in")
    return 0


def _gib(n) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def cmd_devices(args) -> int:
    from .device import DEVICES, probe
    d = args.device
    if d not in DEVICES and not (d.startswith("cuda:") and d[5:].isascii() and d[5:].isdigit()):
        raise KnobError(f"device must be one of auto | cpu | cuda | cuda:N, got {d!r}")
    rep = probe(d)
    if args.json:
        print(json.dumps(rep.to_dict(), ensure_ascii=False))
        return 0
    print(f"{args.device} -> {rep.device}" + (f" ({rep.name})" if rep.name else ""))
    if rep.is_cuda:
        print(f"  compute capability {rep.capability}; memory {_gib(rep.memory_free)} free of {_gib(rep.memory_total)}")
        print(f"  autocast (--amp auto): {rep.amp}")
    for g in rep.gpus:
        print(f"  cuda:{g['index']}: {g['name']}, capability {g['capability']}, {_gib(g['memory_total'])}")
    print(f"  torch {rep.torch}, built for CUDA {rep.torch_cuda or '-'}; kernels for {' '.join(rep.arch_list) or '-'}")
    print(f"  NVIDIA driver {rep.driver or '-'} (supports CUDA up to {rep.driver_cuda or '-'})")
    if rep.reason:
        print(f"  not the GPU: {rep.reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cnnlab", description="CNN Lab: d2l's modern CNNs as data.")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    p = sub.add_parser("archs", help="list architectures and their knobs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_archs)
    p = sub.add_parser("trace", help="layer table (shapes, kernel/stride/padding, receptive field) and cost")
    add_model_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trace)
    train_cli.add_parsers(sub, add_model_args)
    p = sub.add_parser("devices", help="the training device 'auto' picks here, and why not the GPU if not",
                       description="Checks the torch build, the NVIDIA driver, CUDA_VISIBLE_DEVICES, the GPU's compute "
                                   "capability against torch's kernels, and runs a test kernel; prints what a run "
                                   "with --device auto would use, its autocast dtype, and the reason for a CPU fallback.")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devices)
    export_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KnobError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except BrokenPipeError:  # `... | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
