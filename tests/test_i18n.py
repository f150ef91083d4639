"""Every app string exists in both languages with the same placeholders; every key the code asks for exists;
no key is left unused."""
import glob
import os
import pickle
import re
import string

import pytest

from cnnlab import i18n

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DYNAMIC_PREFIXES = ("state.", "reason.", "runs.col_", "runs.status.", "teacher.tab_", "cost.kind_", "cost.role_")  # keys built as prefix + value in the code


def _sources() -> str:
    files = [f for f in glob.glob(os.path.join(ROOT, "cnnlab", "**", "*.py"), recursive=True)
             if not f.endswith("i18n.py")]
    files += glob.glob(os.path.join(ROOT, "app_pages", "*.py")) + [os.path.join(ROOT, "app.py")]
    return "".join(open(f, encoding="utf-8").read() for f in files)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("key", sorted(i18n.STRINGS))
def test_both_languages_with_the_same_placeholders(key):
    en, zh = i18n.STRINGS[key]
    assert en.strip() and zh.strip(), key
    assert _fields(en) == _fields(zh), (key, _fields(en), _fields(zh))


def test_every_key_the_code_asks_for_exists():
    src = _sources()
    asked = set(re.findall(r'\b(?:i18n\.t|tr|t)\(\s*"([a-z_]+\.[a-z0-9_.]+)"', src))
    assert asked, "the pattern found no lookups: the test would pass vacuously"
    missing = sorted(k for k in asked if k not in i18n.STRINGS)
    assert not missing, missing


def test_no_key_is_unused():
    src = _sources()
    unused = [k for k in i18n.STRINGS
              if f'"{k}"' not in src and f"'{k}'" not in src and not k.startswith(DYNAMIC_PREFIXES)]
    assert not unused, unused


def test_a_missing_string_falls_back_to_english_then_to_the_key():
    assert i18n.t("no.such.key", "zh") == "no.such.key"
    key = next(iter(i18n.STRINGS))
    assert i18n.t(key, "xx") == i18n.STRINGS[key][0]


def test_every_architecture_source_note_is_in_chinese_too():
    import re
    from cnnlab.registry import ARCHS
    for spec in ARCHS.values():
        assert re.search(r"[\u4e00-\u9fff]", spec.source_zh), spec.name


def test_run_labels_follow_the_page_language():
    from types import SimpleNamespace
    from cnnlab.ui.train_view import run_label
    start = SimpleNamespace(epochs=10, lr=1.0, batch_size=256, train_size=60000, test_size=10000)
    v = SimpleNamespace(meta={"arch": "lenet", "knobs": {"batchnorm": "scratch"}, "resolution": 28}, start=start,
                        label="LeNet · 10 ep")
    assert run_label(v, "zh") == "BN-LeNet (scratch) · 10 轮 · 学习率 1 · 批量 256 · 60,000/10,000 · 28²"
    assert run_label(v, "en") == "BN-LeNet (scratch) · 10 ep · lr 1 · bs 256 · 60,000/10,000 · 28²"


def test_architecture_page_source_note_in_chinese():
    from streamlit.testing.v1 import AppTest
    from helpers import APP
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception
    assert any("出处: d2l-zh 6.6 LeNet；d2l-zh 7.5 BN-LeNet" in c.value for c in at.caption), \
        [c.value for c in at.caption]


# -- the library's sentences: data (a key and its fields), rendered in each language (i18n.text_of) --------------
MSG_KEYS = sorted(k for k in i18n.STRINGS if k.startswith(i18n.MSG_PREFIX))


def _sample(name: str):
    # fields hold what real values hold: numbers, and text with spaces and commas
    return len(name) if name in ("n", "count", "epoch", "step", "line") else f"'odd value, {name} x-y'"


@pytest.mark.parametrize("key", MSG_KEYS)
def test_every_library_sentence_is_a_key_with_fields_rendered_in_both_languages(key):
    en, zh = i18n.STRINGS[key]
    fields = {f: _sample(f) for f in _fields(en)}
    m = i18n.msg(key, **fields)
    assert isinstance(m, str) and str(m) == en.format(**fields)        # it reads as its English sentence
    assert (m.key, m.fields) == (key, fields)
    assert i18n.text_of(m, "en") == m and i18n.text_of(m, "zh") == zh.format(**fields), key
    back = pickle.loads(pickle.dumps(ValueError(m)))                   # a worker's pipe, Ray
    assert i18n.text_of(back, "zh") == zh.format(**fields)
    assert not re.search(r"\{[a-z_]+:", zh), "a Chinese template takes the English text of a field, no format spec"


def test_text_is_never_parsed_back_into_a_message():
    """Only a Message renders in Chinese: the same words as plain text (a run folder written before messages were
    data, an OS error) show as they are. There is no parser left to guess."""
    m = i18n.msg("msg.knob_unknown", name="widen", arch="resnet", names="depth, residual")
    assert i18n.text_of(m, "zh") != str(m)
    assert i18n.text_of(str(m), "zh") == str(m)
    assert not hasattr(i18n, "say") and not hasattr(i18n, "_WORD_FIELDS")


def test_a_message_keeps_its_key_through_one_line_and_a_renamed_knob():
    from cnnlab.errors import one_line
    from cnnlab.registry import KnobError, resolve

    with pytest.raises(KnobError) as e:
        resolve("vgg", {"ratio": 0})
    line = one_line(e.value)
    assert isinstance(line, i18n.Message) and line == str(e.value)
    assert not isinstance(one_line(e.value, limit=10), i18n.Message)   # cut: plain text
    shown = i18n.renamed(e.value, "ratio", "channel divisor")
    assert str(shown).startswith("channel divisor must be") and i18n.text_of(shown, "zh").startswith("channel divisor 必须")


def test_a_sentence_inside_a_sentence_is_said_too():
    from cnnlab.measure import fitting
    from cnnlab.registry import KnobError, resolve
    with pytest.raises(KnobError) as e:
        resolve("densenet", {"block_config": "4,,4"})
    zh = i18n.text_of(e.value, "zh")
    assert zh.startswith("block_config 必须是 1..") and "个逗号分隔的整数" in zh and "收到的是 '4,,4'" in zh, zh
    with pytest.raises(KnobError) as e:
        fitting("lenet", {}, resolution=3)
    zh = i18n.text_of(e.value, "zh")
    assert zh.startswith("输入太小：第 ") and "分辨率至少为 12，当前为 3" in zh, zh


def test_text_that_is_no_message_is_shown_as_it_is():
    for s in ("OSError: [Errno 28] No space left on device", "", "x and y", "10 s per run per person"):
        assert i18n.text_of(s, "zh") == s
    assert i18n.text_of("VGG", "zh") == i18n.TITLES["VGG"]   # an architecture's title is the one exception
