"""Find the app's own English on a page rendered in 中文 (used by test_i18n_pages.py)."""
from __future__ import annotations

import re

# Names and notation that stay as they are in Chinese text (architectures, papers, units, code names).
KEEP = {
    "lenet", "alexnet", "vgg", "nin", "googlenet", "resnet", "densenet", "mobilenet", "bn", "fashion", "mnist",
    "d2l", "zh", "cpu", "gpu", "cuda", "macs", "mac", "relu", "sigmoid", "se", "bf16", "fp16", "amp", "sgd", "adam",
    "scratch", "nn", "auto", "inception", "hardswish", "swish", "ray", "cnn", "lab", "id", "url",
    "streamlit", "torch", "pytorch", "torchvision", "ram", "mb", "gb", "kb", "gib", "mib", "ms", "min", "ep", "lr",
    "bs", "conv", "dw", "pw", "et", "al", "howard", "sandler", "ioffe", "szegedy", "krizhevsky", "simonyan",
    "huang", "lin", "he", "lecun", "tan", "le", "table", "fig", "v1", "v2", "v3", "nesterov", "max", "avg",
    "pool", "dense", "batchnorm", "layernorm", "softmax", "dropout", "concat", "linear", "python", "docker",
    "space", "hugging", "face", "chromium", "ok", "mult", "adds", "top", "github",
}
WORD = re.compile(r"[A-Za-z][A-Za-z']+")


def strip(text: str) -> str:
    text = re.sub(r"<style>.*?</style>", " ", text, flags=re.S)
    text = re.sub(r"`(?:python|pip|apt-get|streamlit|make|docker)\b[^`]*`", " ", text)  # commands to type
    text = re.sub(r"`", " ", text)  # a code span is still read: plain() shows whole sentences as code spans
    text = re.sub(r"'[^']*'|\"[^\"]*\"", " ", text)  # quoted values a sentence echoes ('4,,4')
    text = re.sub(r"https?://\S+|/\S+|\b\w+\.(py|json|pt|md)\b", " ", text)  # links, paths, files
    # ids (an assignment's "gCtetDS-Wfo5" or "wzYz-kjpWZmx", a run's token): 8+ characters mixing cases with a
    # digit, a hyphen or an underscore (a random id has no digit one time in six)
    text = re.sub(r"(?<![\w-])(?=[\w-]*[\d_-])(?=[\w-]*[a-z])(?=[\w-]*[A-Z])[A-Za-z0-9_-]{8,}(?![\w-])", " ", text)
    text = re.sub(r"\b[a-z_]+=\S*", " ", text)  # knob=value
    text = re.sub(r"\b[a-z]+_[a-z_]+\b", " ", text)  # code names (growth_rate, block_config)
    return text


def english_runs(text: str, knob_names: set[str] = frozenset()) -> list[str]:
    """Runs of two or more English words that are not names or notation, in one piece of page text."""
    s = strip(text)
    runs, cur, prev_end = [], [], 0
    for m in WORD.finditer(s):
        w, low = m.group(0), m.group(0).lower()
        english = low not in KEEP and low not in knob_names and not re.search(r"\d", w) and not (
            w[0].isupper() and any(c.isupper() for c in w[1:]))  # LeNet, GoogLeNet-style names
        if english and cur and re.fullmatch(r"[\s,;:()'\-–/]*", s[prev_end:m.start()]):
            cur.append(w)
        else:
            if len(cur) >= 2:
                runs.append(" ".join(cur))
            cur = [w] if english else []
        prev_end = m.end()
    if len(cur) >= 2:
        runs.append(" ".join(cur))
    return runs


def page_texts(at) -> list[tuple[str, str]]:
    """(element kind, text) for every piece of text the page shows: markdown, captions, alerts, titles,
    metric and widget labels, options, tab and expander labels."""
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader",
                 "latex", "code"):
        for el in getattr(at, kind):
            if kind == "code":
                continue
            out.append((kind, str(el.value)))
    for el in at.metric:
        out.append(("metric", str(el.label)))
    for kind in ("button", "selectbox", "slider", "select_slider", "radio", "toggle", "checkbox", "text_input",
                 "number_input", "multiselect", "text_area", "date_input", "color_picker"):
        for el in getattr(at, kind):
            lab = getattr(el, "label", "")
            out.append((kind, str(lab)))
            hlp = getattr(el, "help", None)
            if hlp:
                out.append((kind + ".help", str(hlp)))
            for opt in getattr(el, "options", []) or []:
                out.append((kind + ".option", str(opt)))
            ph = getattr(el, "placeholder", None)
            if ph:
                out.append((kind + ".placeholder", str(ph)))
    for kind in ("tabs", "expander"):
        for el in getattr(at, kind):
            out.append((kind, str(getattr(el, "label", ""))))
    for el in at.dataframe:
        df = el.value
        out += [("dataframe.column", str(c)) for c in df.columns]
        for c in df.columns:
            out += [("dataframe.cell", v) for v in df[c].tolist() if isinstance(v, str)]
    for el in at.get("plotly_chart"):
        out += [("plotly", t) for t in plotly_texts(el)]
    return out


def plotly_texts(el) -> list[str]:
    """Titles, axis titles, legend names and annotations of a plotly chart element."""
    import json

    try:
        fig = json.loads(el.proto.spec)
    except Exception:  # noqa: BLE001
        return []
    out = []

    def title(obj):
        t = (obj or {}).get("title")
        if isinstance(t, dict):
            t = t.get("text")
        if isinstance(t, str):
            out.append(t)

    lay = fig.get("layout", {})
    title(lay)
    for k, v in lay.items():
        if k.startswith(("xaxis", "yaxis")) and isinstance(v, dict):
            title(v)
        if k.startswith("coloraxis") and isinstance(v, dict):
            title(v.get("colorbar"))
    for a in lay.get("annotations", []) or []:
        if isinstance(a.get("text"), str):
            out.append(a["text"])
    for tr in fig.get("data", []):
        if isinstance(tr.get("name"), str):
            out.append(tr["name"])
        title(tr.get("colorbar"))
    return out


def english_on_page(at, knob_names: set[str] = frozenset()) -> list[tuple[str, str, list[str]]]:
    found = []
    for kind, text in page_texts(at):
        runs = english_runs(text, knob_names)
        if runs:
            found.append((kind, text[:200], runs))
    return found
