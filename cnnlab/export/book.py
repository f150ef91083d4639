"""A model, a Train page's settings, a saved run or an exercise as a notebook (.ipynb, built with nbformat) or a
script (.py, in the percent format Jupyter, VS Code and jupytext open as a notebook).

Every export holds: markdown cells naming the d2l section (in the page's language and edition numbering); the
recipe (seed first, so the model is built from it); the model in the book's idiom and its shape trace
(cnnlab.export.code); Fashion-MNIST loaded as the book loads it (torchvision's dataset and its resize, in [0, 1] as
ToTensor makes it) after the same offline lookup the app makes ($CNNLAB_DATA, ./data, Debian's
dataset-fashion-mnist; torchvision's download otherwise), the same seeded subset when the run used one; and a
compact loop with train_ch6's semantics (Xavier init, SGD, cross-entropy, test accuracy each epoch) that plots the
curves with matplotlib. A run's export loads its model.pt with ``weights_only=True`` into ``net`` and evaluates it
on the run's test data: on the CPU the accuracy is the one the run reported. An exercise's export builds A and B
one after the other from the same seed and trains them with the same data order.

Nothing exported imports cnnlab: the code needs torch, torchvision and matplotlib.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ..i18n import msg, t
from ..registry import Config, KnobError
from .code import model_code, tidy

N_TRAIN, N_TEST = 60000, 10000


@dataclass(frozen=True)
class Cell:
    kind: str      # "markdown" | "code"
    source: str


@dataclass(frozen=True)
class Export:
    """An exported notebook: its cells and the name its files take (``<name>.ipynb`` / ``<name>.py``)."""

    name: str
    cells: tuple[Cell, ...]

    def py(self) -> str:
        """The cells as a percent-format script: markdown as comments, each cell after a `# %%` line."""
        out = []
        for c in self.cells:
            if c.kind == "markdown":
                out.append("# %% [markdown]\n" + "\n".join(("# " + line).rstrip() for line in c.source.splitlines()))
            else:
                out.append("# %%\n" + c.source.rstrip("\n"))
        return "\n\n".join(out) + "\n"

    def notebook(self):
        import nbformat  # the app's runtime dependency; the core imports it only here
        from nbformat import v4

        cells = [v4.new_markdown_cell(c.source) if c.kind == "markdown" else v4.new_code_cell(c.source.rstrip("\n"))
                 for c in self.cells]
        nb = v4.new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}})
        nbformat.validate(nb)
        return nb

    def ipynb(self) -> str:
        import nbformat

        return nbformat.writes(self.notebook())

    def text(self, fmt: str) -> str:
        if fmt == "py":
            return self.py()
        if fmt == "ipynb":
            return self.ipynb()
        raise KnobError(f"format must be py or ipynb, got {fmt!r}")


@dataclass(frozen=True)
class Recipe:
    """What a training run is made of, as the notebook's variables (None sizes: the whole set)."""

    lr: float
    batch_size: int
    num_epochs: int
    seed: int = 0
    optimizer: str = "sgd"
    weight_decay: float = 0.0
    init: str = "xavier"
    train_size: int | None = None
    test_size: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, tc) -> "Recipe":
        """From an engine TrainConfig (resolved)."""
        return cls(lr=float(tc.lr), batch_size=int(tc.batch_size), num_epochs=int(tc.epochs), seed=int(tc.seed),
                   optimizer=tc.optimizer, weight_decay=float(tc.weight_decay), init=tc.init,
                   train_size=tc.train_size, test_size=tc.test_size)

    @classmethod
    def book(cls, cfg: Config) -> "Recipe":
        """The book's recipe for the model (its lr, batch size and epochs) on the whole set."""
        r = cfg.spec.recipe(cfg.knobs)
        return cls(lr=float(r.lr), batch_size=int(r.batch_size), num_epochs=int(r.epochs))


def _source(cfg: Config, lang: str) -> str:
    s = cfg.spec
    return s.source_zh if lang == "zh" and s.source_zh else s.source


def _title(cfg: Config, lang: str) -> str:
    return cfg.spec.title_zh if lang == "zh" else cfg.spec.title_en


def _size(n: int | None) -> str:
    return "None" if n is None else str(int(n))


def _recipe_cell(r: Recipe, lang: str) -> Cell:
    lines = [f"# {t('export.recipe', lang)}",
             f"lr, batch_size, num_epochs = {r.lr!r}, {r.batch_size}, {r.num_epochs}",
             f"optimizer, weight_decay = {r.optimizer!r}, {r.weight_decay!r}  # {t('export.recipe_opt', lang)}",
             f"init = {r.init!r}  # {t('export.recipe_init', lang)}",
             f"train_size, test_size = {_size(r.train_size)}, {_size(r.test_size)}  # {t('export.recipe_sizes', lang)}",
             f"seed = {r.seed}",
             f"torch.manual_seed(seed)  # {t('export.recipe_seed', lang)}"]
    return Cell("code", "\n".join(lines) + "\n")


def _imports_cell() -> Cell:
    return Cell("code", "import gzip\nimport os\nimport shutil\n\nimport matplotlib.pyplot as plt\nimport torch\n"
                        "import torchvision\nfrom torch import nn\nfrom torch.nn import functional as F\n"
                        "from torch.utils import data\nfrom torchvision.transforms import functional as TF\n")


def _data_cell(lang: str, resize: str | None, in_channels: int) -> Cell:
    """The data loader; with `resize` (an expression for the net's input size) it also loads the iterators."""
    c = lambda key: t(key, lang)  # noqa: E731
    src = f'''FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def data_root():  # {c("export.data_root")}
    cache = os.environ.get('CNNLAB_CACHE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache'), 'cnnlab')
    for folder in (os.environ.get('CNNLAB_DATA'), 'data', '/usr/share/datasets/fashion-mnist'):
        if not folder or not os.path.isdir(folder):
            continue
        if all(os.path.isfile(os.path.join(folder, 'FashionMNIST', 'raw', f)) for f in FILES):
            return folder
        for d in (folder, os.path.join(folder, 'FashionMNIST', 'raw')):
            found = {{f: p for f in FILES for p in (os.path.join(d, f), os.path.join(d, f + '.gz'))
                     if os.path.isfile(p)}}
            if len(found) == len(FILES):  # {c("export.data_gz")}
                root = os.path.join(cache, 'fashion-mnist')
                raw = os.path.join(root, 'FashionMNIST', 'raw')
                os.makedirs(raw, exist_ok=True)
                for f, p in found.items():
                    if not os.path.isfile(os.path.join(raw, f)):
                        with (gzip.open(p) if p.endswith('.gz') else open(p, 'rb')) as src, \\
                                open(os.path.join(raw, f + '.tmp'), 'wb') as dst:
                            shutil.copyfileobj(src, dst)
                        os.replace(os.path.join(raw, f + '.tmp'), os.path.join(raw, f))
                return root
    return None


def stratified_subset(y, n, seed):  # {c("export.data_subset")}
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    classes = torch.unique(y)
    counts = [int((y == k).sum()) for k in classes]
    picked, left = [], n
    for j, i in enumerate(sorted(range(len(classes)), key=lambda i: counts[i])):
        idx = perm[y[perm] == classes[i]][:min(counts[i], left // (len(classes) - j))]
        picked.append(idx)
        left -= len(idx)
    return torch.cat(picked).sort().values


def load_data_fashion_mnist(batch_size, resize=None, train_size=None, test_size=None, seed=0):  # {c("export.data_load")}
    root = data_root()
    iters = []
    for train, size, subset_seed in ((True, train_size, seed), (False, test_size, seed + 1)):
        mnist = torchvision.datasets.FashionMNIST(root=root or 'data', train=train, download=root is None)
        X, y = mnist.data, mnist.targets
        if size is not None and size < len(y):
            idx = stratified_subset(y, size, subset_seed)
            X, y = X[idx], y[idx]
        r = resize or X.shape[-1]
        as_bytes = len(y) * r * r * 4 > 2 ** 30  # {c("export.data_bytes")}

        def collate(batch, r=r, as_bytes=as_bytes):
            X = torch.stack([x for x, _ in batch]).unsqueeze(1).float()
            if X.shape[-1] != r:
                X = TF.resize(X, [r, r], antialias=True)  # {c("export.data_resize")}
                if as_bytes:
                    X = X.round().clamp(0, 255)
            X = (X / 255).expand(-1, {in_channels}, -1, -1)  # {c("export.data_scale")}
            return X, torch.stack([t for _, t in batch])

        iters.append(data.DataLoader(data.TensorDataset(X, y), batch_size, shuffle=train, collate_fn=collate,
                                     generator=torch.Generator().manual_seed(seed) if train else None))
    return iters
'''
    if resize is not None:
        src += (f"\n\ntrain_iter, test_iter = load_data_fashion_mnist(batch_size, resize={resize}, "
                f"train_size=train_size,\n                                                test_size=test_size, seed=seed)\n")
    return Cell("code", tidy(src))


def _train_cell(lang: str) -> Cell:
    c = lambda key: t(key, lang)  # noqa: E731
    src = f'''device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')  # {c("export.train_device")}


def init_weights(m):  # {c("export.train_init")}
    if type(m) == nn.Linear or type(m) == nn.Conv2d:
        nn.init.xavier_uniform_(m.weight)


def evaluate_accuracy(net, data_iter, device):
    net.eval()
    correct, n = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += int((net(X).argmax(dim=1) == y).sum())
            n += y.numel()
    return correct / n


def train_ch6(net, train_iter, test_iter, num_epochs, lr, device):  # {c("export.train_loop")}
    if init == 'xavier':
        net.apply(init_weights)
    net.to(device)
    if optimizer == 'sgd':
        trainer = torch.optim.SGD(net.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        trainer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss = nn.CrossEntropyLoss()
    history = []
    for epoch in range(num_epochs):
        net.train()
        l_sum, correct, n = 0.0, 0, 0
        for X, y in train_iter:
            trainer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)
            l.backward()
            trainer.step()
            l_sum += l.item() * y.numel()
            correct += int((y_hat.argmax(dim=1) == y).sum())
            n += y.numel()
        test_acc = evaluate_accuracy(net, test_iter, device)
        history.append((l_sum / n, correct / n, test_acc))
        print(f'epoch {{epoch + 1}}: loss {{l_sum / n:.3f}}, train acc {{correct / n:.3f}}, test acc {{test_acc:.3f}}')
    return history


def plot(history, title=''):  # {c("export.train_plot")}
    epochs = range(1, len(history) + 1)
    for i, label in enumerate(('train loss', 'train acc', 'test acc')):
        plt.plot(epochs, [h[i] for h in history], marker='o', label=label)
    plt.xlabel('epoch')
    plt.title(title)
    plt.grid(True)
    plt.legend()
    plt.show()
'''
    return Cell("code", tidy(src))


def _md(lang: str, key: str, **fmt) -> Cell:
    return Cell("markdown", t(key, lang, **fmt))


def _model_cells(cfg: Config, lang: str, var: str | None = None) -> tuple[list[Cell], str]:
    """The model code cell and its trace cell (`var`: also keep the net under this name, for A and B)."""
    mc = model_code(cfg, lang)
    body = mc.header + "\n" + mc.body
    if var:
        body += f"{var} = net\n"
    return [Cell("code", body), Cell("code", mc.trace)], mc.input_size


def _head(title: str, section: str, lang: str, intro_key: str) -> list[Cell]:
    return [Cell("markdown", f"# {title}\n\n{t('export.nb_section', lang, section=section)}\n\n"
                             f"{t(intro_key, lang)}"),
            _imports_cell()]


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_") or "cnnlab"


def _tail_train(lang: str, var: str = "net", title: str = "") -> list[Cell]:
    return [Cell("code", f"history = train_ch6({var}, train_iter, test_iter, num_epochs, lr, device)\n"
                         f"plot(history, {title!r})\n")]


def model_export(cfg: Config, lang: str = "en", recipe: Recipe | None = None) -> Export:
    """The Architecture page's export: the model with its knobs, its trace, the data and the book's recipe."""
    r = recipe or Recipe.book(cfg)
    cells = _head(_title(cfg, lang), _source(cfg, lang), lang, "export.nb_intro_model")
    cells += [_md(lang, "export.nb_recipe"), _recipe_cell(r, lang), _md(lang, "export.nb_model")]
    model, input_size = _model_cells(cfg, lang)
    cells += [model[0], _md(lang, "export.nb_trace"), model[1],
              _md(lang, "export.nb_data"), _data_cell(lang, input_size, cfg.in_channels),
              _md(lang, "export.nb_train"), _train_cell(lang), *_tail_train(lang, title=_title(cfg, lang))]
    return Export(name=_slug(f"{cfg.arch}"), cells=tuple(cells))


def train_export(tc, lang: str = "en") -> Export:
    """The Train page's export: the model and the run's recipe (a resolved or resolvable engine TrainConfig)."""
    tc = tc.resolved()
    cfg = tc.model_config()
    return replace(model_export(cfg, lang, Recipe.of(tc)), name=_slug(f"{cfg.arch}-train"))


def _run_recipe(cfg: Config, train: Any, where: str) -> Recipe:
    """A run's recipe from its config.json "train", every value checked as the engine checks it (a folder may come
    from anywhere); CheckpointError (one line) when one cannot be used."""
    from ..checkpoint import CheckpointError
    from ..engine.config import BATCH, EPOCHS, LR, OPT, SEED, SIZE, WD

    tr = train if isinstance(train, dict) else {}
    book = cfg.spec.recipe(cfg.knobs)

    def size(v, full):
        return None if v is None or SIZE.validate(v) >= full else SIZE.validate(v)

    try:
        init = tr.get("init", "xavier")
        if init not in ("xavier", "keep"):
            raise KnobError(f"init must be one of xavier | keep, got {init!r}"[:120])
        return Recipe(lr=LR.validate(tr.get("lr", book.lr)),
                      batch_size=BATCH.validate(tr.get("batch_size", book.batch_size)),
                      num_epochs=EPOCHS.validate(tr.get("epochs", book.epochs)),
                      seed=SEED.validate(tr.get("seed", 0)), optimizer=OPT.validate(tr.get("optimizer", "sgd")),
                      weight_decay=WD.validate(tr.get("weight_decay", 0.0)), init=init,
                      train_size=size(tr.get("train_size"), N_TRAIN), test_size=size(tr.get("test_size"), N_TEST))
    except KnobError as e:
        raise CheckpointError(msg("msg.export_recipe", path=where, why=str(e))) from None


def run_export(run_dir: str, lang: str = "en", weights: str = "model.pt") -> Export:
    """A saved run: its model and recipe (config.json), then its model.pt loaded with weights_only into `net` and
    evaluated on the run's test data, against the accuracy the run reported; then training again from scratch.
    `weights`: the path the notebook loads (the download sits next to the notebook)."""
    from .. import checkpoint

    cfg_json = checkpoint.read_config(run_dir)
    where = os.path.join(run_dir, checkpoint.CONFIG)
    cfg = checkpoint.model_config_of(cfg_json, where)
    recipe = _run_recipe(cfg, cfg_json.get("train"), where)
    final = cfg_json.get("final") if isinstance(cfg_json.get("final"), dict) else {}
    reported = final.get("test_acc") if cfg_json.get("status") == "finished" else None
    if not isinstance(reported, (int, float)) or isinstance(reported, bool):
        reported = None
    # the folder's name, as file names and a title take it (config.json may come from anywhere: no markup)
    run_id = _slug(os.path.basename(os.path.normpath(run_dir)))
    base = model_export(cfg, lang, recipe)
    cells = list(base.cells)
    cells[0] = Cell("markdown", f"# {_title(cfg, lang)} · {run_id}\n\n"
                                f"{t('export.nb_section', lang, section=_source(cfg, lang))}\n\n"
                                f"{t('export.nb_intro_run', lang)}")
    at = next(i for i, c in enumerate(cells) if c.kind == "markdown" and c.source == t("export.nb_train", lang))
    check = (f"reported = {reported!r}  # {t('export.run_reported', lang)}\n" if reported is not None
             else f"reported = None  # {t('export.run_unfinished', lang)}\n")
    load = Cell("code", f'''weights = {weights!r}  # {t("export.run_weights", lang)}
state = torch.load(weights, map_location='cpu', weights_only=True)  # {t("export.run_safe", lang)}
net.load_state_dict(state['state_dict'], strict=True)
net.to(device)
{check}test_acc = evaluate_accuracy(net, test_iter, device)
print(f'test acc {{test_acc:.6f}} (epoch {{state.get("epoch")}}); the run reported {{reported}}')
''')
    train_md, train_code, run_cell = cells[at:at + 3]
    cells[at:] = [train_md, train_code, _md(lang, "export.nb_run_weights"), load,
                  _md(lang, "export.nb_retrain"), run_cell]
    return Export(name=_slug(f"{run_id}"), cells=tuple(cells))


def exercise_export(ex, lang: str = "en", seed: int = 0, **over) -> Export:
    """An exercise: A and B side by side, each built from the same seed and trained with the same data order
    (`over`: TrainConfig fields, e.g. a smaller train_size for a quick look)."""
    tcs = [ex.train_config(side, seed=seed, **over) for side in (ex.a, ex.b)]
    cfgs = [tc.model_config() for tc in tcs]
    ra, rb = Recipe.of(tcs[0]), Recipe.of(tcs[1])
    head = (f"# {ex.text('title', lang)}\n\n{t('export.nb_section', lang, section=ex.section_label(lang))}\n\n"
            f"**{t('ex.question', lang)}** {ex.text('question', lang)}\n\n"
            f"**{t('ex.look', lang)}** {ex.text('look', lang)}\n\n"
            f"**{t('ex.reported', lang)}** {ex.text('reported', lang)}\n\n{t('export.nb_intro_ab', lang)}")
    cells = [Cell("markdown", head), _imports_cell(), _md(lang, "export.nb_recipe"), _recipe_cell(ra, lang)]
    for tag, side, cfg in (("A", ex.a, cfgs[0]), ("B", ex.b, cfgs[1])):
        model, _ = _model_cells(cfg, lang, var=f"net_{tag.lower()}")
        cells += [Cell("markdown", f"## {tag}: {side.label(lang)}"),
                  Cell("code", f"torch.manual_seed(seed)  # {t('export.ab_seed', lang)}\n"), model[0], model[1]]
    cells += [Cell("code", "for name, m in (('A', net_a), ('B', net_b)):\n"
                           "    print(name, sum(p.numel() for p in m.parameters()), 'parameters')\n"),
              _md(lang, "export.nb_data"), _data_cell(lang, None, cfgs[1].in_channels),
              _md(lang, "export.nb_train"), _train_cell(lang)]
    runs = []
    for tag, r, cfg in (("A", ra, cfgs[0]), ("B", rb, cfgs[1])):
        v = tag.lower()
        runs.append(f"lr, batch_size, optimizer, weight_decay = {r.lr!r}, {r.batch_size}, {r.optimizer!r}, "
                    f"{r.weight_decay!r}  # {tag}\n"
                    f"train_iter, test_iter = load_data_fashion_mnist(batch_size, resize={cfg.input_hw}, "
                    f"train_size=train_size, test_size=test_size, seed=seed)  # {t('export.ab_order', lang)}\n"
                    f"history_{v} = train_ch6(net_{v}, train_iter, test_iter, num_epochs, lr, device)\n")
    cells += [Cell("code", "\n".join(runs)),
              Cell("code", "for tag, h in (('A', history_a), ('B', history_b)):\n"
                           "    plt.plot(range(1, len(h) + 1), [e[2] for e in h], marker='o', label=f'{tag}: test acc')\n"
                           "plt.xlabel('epoch')\nplt.grid(True)\nplt.legend()\nplt.show()\n")]
    return Export(name=_slug(f"exercise-{ex.id}"), cells=tuple(cells))
