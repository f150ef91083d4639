"""`python -m cnnlab export`: a model, a saved run or an exercise as d2l-style PyTorch (.py) or a notebook (.ipynb).

    python -m cnnlab export vgg --set ratio=4 --resolution 96            # the .py to stdout
    python -m cnnlab export densenet --set growth_rate=12 -o densenet.ipynb
    python -m cnnlab export --run checkpoints/20261205-...-lenet-ab12 -o run.ipynb
    python -m cnnlab export lenet --model-only                           # the model only (the Code panel)

Bad input gets one line on stderr and exit status 2, as every command.
"""
from __future__ import annotations

import os
import sys

from ..i18n import message_of
from ..registry import KnobError, parse_sets

FORMATS = ("py", "ipynb")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="the model (or a saved run, or an exercise) as d2l-style PyTorch: .py or .ipynb",
        description="Writes the model with its knob values at the top, in the book's idiom (torch alone), its shape "
                    "trace, Fashion-MNIST loaded as the book loads it and a loop with train_ch6's semantics. --run: a "
                    "saved run with its recipe and its model.pt loaded (weights_only); --exercise: A and B of an "
                    "exercise. A .py goes to stdout unless -o is given.")
    p.add_argument("arch", nargs="?", help="architecture name (see `archs`); not with --run or --exercise")
    p.add_argument("--set", dest="sets", action="append", metavar="KNOB=VALUE", default=[],
                   help="set a knob; repeat for several")
    p.add_argument("--in-channels", type=int, default=None)
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--resolution", type=int, default=None,
                   help="input height = width (default: the book's resolution for the model)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="py (default) or ipynb; -o FILE.ipynb picks ipynb")
    p.add_argument("--run", metavar="RUN_DIR", help="a saved run's folder: its model, recipe and weights")
    p.add_argument("--exercise", metavar="ID", help="an exercise's A and B (see the Exercises page)")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the comments and text cells")
    p.add_argument("--model-only", action="store_true",
                   help="only the model and its shape trace (what the Architecture page's Code panel shows)")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=cmd_export)


def _fmt(args) -> str:
    if args.format:
        return args.format
    return "ipynb" if args.output and args.output.lower().endswith(".ipynb") else "py"


def _model_flags(args) -> list[str]:
    given = [("--set", bool(args.sets)), ("--resolution", args.resolution is not None),
             ("--in-channels", args.in_channels is not None), ("--num-classes", args.num_classes is not None)]
    return [name for name, on in given if on]


def build(args):
    """The Export (or, with --model-only, the model's script text) the arguments ask for. Raises KnobError."""
    from ..checkpoint import CheckpointError
    from .book import exercise_export, model_export, run_export
    from .code import model_code

    sources = [s for s, on in (("ARCH", args.arch), ("--run", args.run), ("--exercise", args.exercise)) if on]
    if len(sources) != 1:
        raise KnobError("export takes one of ARCH, --run RUN_DIR or --exercise ID"
                        + (f", got {' and '.join(sources)}" if sources else ""))
    if (args.run or args.exercise) and _model_flags(args):
        raise KnobError(f"{' and '.join(_model_flags(args))} cannot be used with {sources[0]}: "
                        "the model comes from there")
    if args.run:
        if args.model_only:
            raise KnobError("--model-only cannot be used with --run")
        try:
            return run_export(args.run, args.lang, weights=os.path.join(os.path.abspath(args.run), "model.pt"))
        except CheckpointError as e:
            raise KnobError(message_of(e)) from None
    if args.exercise:
        from .. import exercises

        if args.model_only:
            raise KnobError("--model-only cannot be used with --exercise")
        return exercise_export(exercises.get(args.exercise), args.lang)
    from ..measure import fitting

    cfg = fitting(args.arch, parse_sets(args.sets), in_channels=1 if args.in_channels is None else args.in_channels,
                  num_classes=10 if args.num_classes is None else args.num_classes, resolution=args.resolution)
    if args.model_only:
        return model_code(cfg, args.lang).script()
    return model_export(cfg, args.lang)


def cmd_export(args) -> int:
    fmt = _fmt(args)
    if args.model_only and fmt != "py":
        raise KnobError("--model-only writes a .py; drop --format ipynb")
    out = build(args)
    try:
        text = out if isinstance(out, str) else out.text(fmt)
    except ImportError as e:  # nbformat is in requirements.txt; a bare environment may lack it
        raise KnobError(f"a .ipynb needs nbformat ({e}); install it, or export --format py") from None
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise KnobError(f"cannot write {args.output}: {e.strerror or e}") from None
    sys.stderr.write(f"wrote {args.output}\n")
    return 0
