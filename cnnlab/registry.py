"""The one table of models: typed knobs, architecture specs, validation, build().

Every architecture is data: an :class:`ArchSpec` names its builder, its knobs
(type, default, range or choices, help text in English and Chinese), the
book's resolution and the book's training hyper-parameters. Callers go through
:func:`resolve` (validate + fill defaults) and :class:`Config.build`. Importing :mod:`cnnlab` imports
:mod:`cnnlab.models`, whose files register every family; this module imports none of them, and nothing
that measures a model (cnnlab.measure reads this table, never the reverse).

Errors are for people: a bad value raises :class:`KnobError` with one line that
names the knob and its valid range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from .i18n import KNOB_LABELS_ZH, TITLES, msg
from .units import format_value  # noqa: F401  (a knob value as people write it)
from .errors import KnobError


_TRUE = {"1", "true", "on", "yes", "y"}
_FALSE = {"0", "false", "off", "no", "n"}
ECHO_LIMIT = 60  # characters of a rejected value echoed back in an error


def _echo(value: Any) -> str:
    """A rejected input as an error quotes it: repr'd, never more than ECHO_LIMIT characters."""
    text = repr(value)
    return text if len(text) <= ECHO_LIMIT else text[:ECHO_LIMIT - 1] + "…"


def parse_sets(pairs: list[str] | None) -> dict[str, str]:
    """['ratio=4', 'batchnorm=on'] -> {'ratio': '4', 'batchnorm': 'on'} (the CLI's --set); each value is
    parsed later by its knob."""
    out: dict[str, str] = {}
    for p in pairs or []:
        if "=" not in p:
            raise KnobError(f"--set takes KNOB=VALUE, got {p!r}")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@dataclass(frozen=True)
class Knob:
    """A typed, validated knob.

    kind: ``int`` | ``float`` | ``bool`` | ``choice`` | ``ints`` (a tuple of ints,
    written ``6,12,24,16``). Numeric kinds have ``lo``/``hi`` (``lo_open`` makes the
    lower bound exclusive, e.g. θ in (0, 1]); ``choice`` has ``choices``; ``ints``
    has ``lo``/``hi`` for each element and ``min_len``/``max_len`` for the length.
    """

    name: str
    kind: str
    default: Any
    help_en: str
    help_zh: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple = ()
    min_len: int = 1
    max_len: int = 8
    label_zh: str = ""
    step: float | None = None
    suggestions: tuple = ()  # named values shown as presets (e.g. block configs)

    def __post_init__(self):
        assert self.kind in ("int", "float", "bool", "choice", "ints"), self.kind
        self.validate(self.default)  # a spec with a bad default is a programming error

    # -- describing -------------------------------------------------------------
    def range_text(self) -> str:
        if self.kind == "bool":
            return msg("msg.range_bool")
        if self.kind == "choice":
            return msg("msg.range_choice", choices=" | ".join(format_value(c) for c in self.choices))
        if self.kind == "ints":
            return msg("msg.range_ints", min_len=self.min_len, max_len=self.max_len,
                       lo=format_value(int(self.lo)), hi=format_value(int(self.hi)))
        if self.kind == "int":
            return msg("msg.range_int", lo=int(self.lo), hi=int(self.hi))
        return msg("msg.range_float", left="(" if self.lo_open else "[", lo=format_value(float(self.lo)),
                   hi=format_value(float(self.hi)))

    def _bad(self, got: Any) -> KnobError:
        return KnobError(msg("msg.knob_bad", knob=self.name, range=self.range_text(),
                             got=_echo(got if isinstance(got, str) else format_value(got))))

    # -- parsing and validating -----------------------------------------------
    def parse(self, raw: str) -> Any:
        """Parse a string from the CLI or the URL, then validate it."""
        s = str(raw).strip()
        try:
            if self.kind in ("int", "float", "ints") and (not s.isascii() or "_" in s):
                raise ValueError  # ASCII digits only: no '٤', '４' or '1_0' (which int() and float() accept)
            if self.kind == "int":
                f = float(s)
                if not f.is_integer():
                    raise ValueError
                value: Any = int(f)
            elif self.kind == "float":
                value = float(s)
            elif self.kind == "bool":
                low = s.lower()
                if low in _TRUE:
                    value = True
                elif low in _FALSE:
                    value = False
                else:
                    raise ValueError
            elif self.kind == "choice":  # the choice written as people write it ("18" for 18, "on" for True)
                value = next((c for c in self.choices if format_value(c) == s), s)
            else:
                parts = s.replace("[", "").replace("]", "").replace("(", "").replace(")", "").split(",")
                if any(p.strip() == "" for p in parts):
                    raise ValueError  # '4,,4' is a typo, not 4,4
                value = tuple(int(p.strip()) for p in parts)
        except ValueError:
            raise self._bad(s) from None
        return self.validate(value)

    def validate(self, value: Any) -> Any:
        """Return the canonical value, or raise KnobError naming the knob and its range."""
        k = self.kind
        if k == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str):
                return self.parse(value)
            raise self._bad(value)
        if k == "choice":
            if value in self.choices and not (isinstance(value, bool) and not any(c is value for c in self.choices)):
                return next(c for c in self.choices if c == value)
            if isinstance(value, str):
                parsed = next((c for c in self.choices if format_value(c) == value.strip()), None)
                if parsed is not None:
                    return parsed
            raise self._bad(value)
        if k == "ints":
            if isinstance(value, str):
                return self.parse(value)
            if not isinstance(value, (tuple, list)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise self._bad(value)
            value = tuple(value)
            if not (self.min_len <= len(value) <= self.max_len) or any(not (self.lo <= v <= self.hi) for v in value):
                raise self._bad(value)
            return value
        # numeric
        if isinstance(value, str):
            return self.parse(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._bad(value)
        if k == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise self._bad(value)
                value = int(value)
        else:
            value = float(value)
            if math.isnan(value):
                raise self._bad(value)
        low_ok = value > self.lo if self.lo_open else value >= self.lo
        if not low_ok or value > self.hi:
            raise self._bad(value)
        return value

    def help(self, lang: str = "en") -> str:
        return self.help_zh if lang == "zh" else self.help_en

    def as_dict(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "default": self.default, "range": self.range_text(),
             "help_en": self.help_en, "help_zh": self.help_zh}
        if self.kind in ("int", "float", "ints"):
            d.update(lo=self.lo, hi=self.hi)
            if self.lo_open:
                d["lo_open"] = True
        if self.kind == "choice":
            d["choices"] = list(self.choices)
        if self.kind == "ints":
            d.update(min_len=self.min_len, max_len=self.max_len)
            d["default"] = list(self.default)
        if self.suggestions:
            d["suggestions"] = [list(s) if isinstance(s, tuple) else s for s in self.suggestions]
        return d


@dataclass(frozen=True)
class BookTraining:
    """The book's (or the paper notes') training recipe for a model."""

    lr: float
    batch_size: int
    resolution: int
    epochs: int = 10
    knobs: Mapping[str, Any] = field(default_factory=dict)  # knob overrides the book trains with
    accuracy: float | None = None  # the test accuracy the book reports after `epochs`


@dataclass(frozen=True)
class Recipe:
    """A model's training recipe with its knobs merged in (``ArchSpec.recipe``)."""

    knobs: Mapping[str, Any]
    lr: float
    batch_size: int
    resolution: int
    epochs: int
    accuracy: float | None


@dataclass(frozen=True)
class ArchSpec:
    name: str
    title_en: str
    title_zh: str
    builder: Callable[..., nn.Module]
    knobs: tuple[Knob, ...]
    book_resolution: int  # the resolution the book prints shapes at
    training: BookTraining
    source: str  # where the defaults come from
    input_size: Callable[[Mapping[str, Any], int], int] | None = None  # knobs, resolution -> H (=W)
    lr_for: Callable[[Mapping[str, Any]], float] | None = None  # lr depending on knobs (BN-LeNet)
    source_zh: str = ""  # the same note in Chinese (d2l-zh's section numbers)

    def knob(self, name: str) -> Knob:
        for k in self.knobs:
            if k.name == name:
                return k
        names = ", ".join(k.name for k in self.knobs) or "none"
        raise KnobError(msg("msg.knob_unknown", name=_echo(name), arch=self.name, names=names))

    def defaults(self) -> dict:
        return {k.name: k.default for k in self.knobs}

    def book_lr(self, knobs: Mapping[str, Any]) -> float:
        return self.lr_for(knobs) if self.lr_for else self.training.lr

    def recipe(self, knobs: Mapping[str, Any] | None = None) -> "Recipe":
        """The book's training recipe for this model: the knobs it trains with (the knob defaults, then the
        book's training knobs, then `knobs`), and the lr, batch size, resolution and epochs for them.

        The one place the recipe is merged: the engine, the presets, the Train page and the CLI call this.
        """
        merged = {**self.defaults(), **dict(self.training.knobs), **dict(knobs or {})}
        t = self.training
        return Recipe(knobs=merged, lr=float(self.book_lr(merged)), batch_size=t.batch_size,
                      resolution=t.resolution, epochs=t.epochs, accuracy=t.accuracy)


ARCHS: dict[str, ArchSpec] = {}


def register(spec: ArchSpec) -> ArchSpec:
    assert spec.name not in ARCHS, spec.name
    ARCHS[spec.name] = spec
    TITLES[spec.title_en] = spec.title_zh  # an architecture named inside a sentence
    for k in spec.knobs:  # the first architecture that names a knob gives its d2l-zh term
        if k.label_zh:
            KNOB_LABELS_ZH.setdefault(k.name, k.label_zh)
    return spec


def get_spec(arch: str) -> ArchSpec:
    try:
        return ARCHS[arch]
    except (KeyError, TypeError):  # TypeError: a list or a dict from a JSON file
        raise KnobError(msg("msg.arch_unknown", name=_echo(arch), names=", ".join(ARCHS))) from None


def arch_names() -> list[str]:
    return list(ARCHS)


IN_CHANNELS = Knob("in_channels", "int", 1, "input channels (1 for Fashion-MNIST, 3 for RGB)",
                    "输入通道数（Fashion-MNIST 为 1，RGB 为 3）", lo=1, hi=16)
NUM_CLASSES = Knob("num_classes", "int", 10, "number of output classes", "输出类别数", lo=2, hi=10000)
RESOLUTION = Knob("resolution", "int", 224, "input height = width in pixels", "输入图像的高和宽（像素）",
                   lo=1, hi=1024)


@dataclass(frozen=True)
class Config:
    """A validated model configuration: everything needed to rebuild the same model."""

    arch: str
    knobs: Mapping[str, Any]
    in_channels: int
    num_classes: int
    resolution: int

    @property
    def spec(self) -> ArchSpec:
        return get_spec(self.arch)

    @property
    def input_hw(self) -> int:
        """The spatial size the network sees (MobileNet V1's ρ scales the resolution)."""
        f = self.spec.input_size
        return f(self.knobs, self.resolution) if f else self.resolution

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.input_hw, self.input_hw)

    def build(self) -> nn.Module:
        return self.spec.builder(in_channels=self.in_channels, num_classes=self.num_classes,
                                 resolution=self.input_hw, **dict(self.knobs))

    def to_dict(self) -> dict:
        return {"arch": self.arch, "knobs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.knobs.items()},
                "in_channels": self.in_channels, "num_classes": self.num_classes, "resolution": self.resolution}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Config":
        return resolve(d["arch"], d.get("knobs", {}), in_channels=d.get("in_channels", 1),
                       num_classes=d.get("num_classes", 10), resolution=d.get("resolution"))


def resolve(arch: str, knobs: Mapping[str, Any] | None = None, *, in_channels: int = 1, num_classes: int = 10,
            resolution: int | None = None) -> Config:
    """Validate every knob (strings are parsed) and fill the defaults: a Config, its shapes not yet checked
    (cnnlab.measure.fitting checks them). Raises KnobError with one line naming the knob and its valid range.
    """
    spec = get_spec(arch)
    given = dict(knobs or {})
    values = spec.defaults()
    for name, raw in given.items():
        values[name] = spec.knob(name).validate(raw)
    return Config(arch=arch, knobs=values,
                  in_channels=IN_CHANNELS.validate(in_channels),
                  num_classes=NUM_CLASSES.validate(num_classes),
                  resolution=RESOLUTION.validate(spec.book_resolution if resolution is None else resolution))

