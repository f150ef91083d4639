"""中文 everywhere: every page, rendered in Chinese with AppTest (happy paths and the error sentences a student
meets: bad knobs in a link, an input too small, a refused run, a bad assignment or exercise link, the teacher's
Class page), shows none of the app's own English. Names and notation (LeNet, GPU, MACs, knob code names) may
stay; what may not is a run of two or more English words (tests/zh_scan.py says exactly what counts).

The same scan in English finds plenty on the same pages: the test can fail."""
import os

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from helpers import APP, assert_no_exception, needs_fmnist, save_tiny_run  # noqa: E402
from zh_scan import english_on_page  # noqa: E402

from cnnlab.registry import ARCHS, arch_names  # noqa: E402

TIMEOUT = 120
KNOB_NAMES = {k.name for a in arch_names() for k in ARCHS[a].knobs}


@pytest.fixture(autouse=True)
def ckpt_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CHECKPOINTS", str(tmp_path / "ckpt"))
    yield tmp_path / "ckpt"


def _open(page: str, lang: str = "zh", **params) -> AppTest:
    """`page` in `lang`, opened from a link with `params` (the Architecture page is the first page: its link is
    read on the first run; another page gets the link after the switch, as a pasted address would)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["lang"] = lang
    if page == "app_pages/architecture.py":
        for k, v in params.items():
            at.query_params[k] = v
        at.run()
    else:
        at.run()
        at.switch_page(page).run()
        at.query_params.clear()
        for k, v in {"lang": lang, **params}.items():
            at.query_params[k] = v
        at.run()
    assert_no_exception(at)
    title = {"architecture": "网络结构", "train": "训练", "batchnorm": "批量规范化", "runs": "已保存",
             "exercises": "练习", "teacher": "班级"}[page.split("/")[-1][:-3]]
    if lang == "zh":
        assert any(title in t.value for t in at.title), ([t.value for t in at.title], page)
    return at


def _english(at) -> list:
    return english_on_page(at, KNOB_NAMES)


CASES = [
    ("app_pages/architecture.py", {}),
    ("app_pages/architecture.py", {"arch": "vgg", "ratio": "999", "res": "0"}),
    ("app_pages/architecture.py", {"arch": "lenet", "res": "3"}),
    ("app_pages/architecture.py", {"arch": "densenet", "block_config": "4,,4"}),
    ("app_pages/architecture.py", {"arch": "mobilenet_v1"}),
    ("app_pages/architecture.py", {"arch": "nope"}),
    ("app_pages/train.py", {}),
    ("app_pages/train.py", {"arch": "vgg", "ratio": "999", "ep": "0", "ntr": "99999999", "lr": "-1"}),
    ("app_pages/train.py", {"assign": "not-a-valid-id!"}),
    ("app_pages/batchnorm.py", {}),
    ("app_pages/runs.py", {}),
    ("app_pages/exercises.py", {}),
    ("app_pages/exercises.py", {"ex": "nope"}),
]


@pytest.mark.parametrize("page,params", CASES, ids=[f"{p.split('/')[-1][:-3]}-{'&'.join(q) or 'plain'}"
                                                    for p, q in CASES])
def test_a_page_in_chinese_shows_no_english_sentences(page, params):
    at = _open(page, **params)
    assert not _english(at), _english(at)


def test_the_scan_finds_english_on_the_same_pages_in_english():
    for page, params in [("app_pages/architecture.py", {"arch": "lenet", "res": "3"}),
                         ("app_pages/train.py", {"arch": "vgg", "ratio": "999"})]:
        found = _english(_open(page, lang="en", **params))
        assert len(found) >= 5, found


def test_the_error_sentences_themselves_are_in_chinese():
    at = _open("app_pages/architecture.py", arch="lenet", res="3")
    assert any("输入太小：第 " in e.value and "分辨率至少为 12" in e.value for e in at.error), \
        [e.value for e in at.error]
    at = _open("app_pages/architecture.py", arch="vgg", ratio="999")
    assert any("ratio 必须是 1..64 之间的整数" in w.value for w in at.warning), [w.value for w in at.warning]



def _refused_train_page(lang: str = "zh") -> AppTest:
    """The Train page with the book's VGG on 10,000 images: too much for this CPU server, refused on Start."""
    at = _open("app_pages/train.py", lang=lang)
    at.selectbox(key="train_preset").set_value("resnet_cpu").run()
    at.selectbox(key="train_arch").set_value("vgg").run()
    at.button(key="train_start").click().run()
    assert_no_exception(at)
    return at


def test_a_refused_run_is_refused_in_chinese():
    at = _refused_train_page()
    assert any("本服务器允许" in w.value and "请选择一个 CPU 预设" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    assert any("本服务器允许" in e.value for e in at.error), [e.value for e in at.error]
    assert not _english(at), _english(at)
    assert _english(_refused_train_page("en"))


@needs_fmnist
def test_saved_runs_and_the_class_page_in_chinese(ckpt_root, monkeypatch):
    save_tiny_run(ckpt_root, train_size=256, test_size=128, epochs=1)
    at = _open("app_pages/runs.py")
    assert not _english(at), _english(at)
    monkeypatch.setenv("CNNLAB_TEACHER_PASSWORD", "pw-for-the-test")
    at = _open("app_pages/runs.py")
    at.sidebar.text_input(key="teacher_password").set_value("pw-for-the-test").run()
    at.switch_page("app_pages/teacher.py").run()
    assert_no_exception(at)
    assert at.dataframe, "the Class page lists the class's runs"
    assert not _english(at), _english(at)


@needs_fmnist
def test_a_run_stopped_on_request_says_so_in_chinese():
    import time

    from cnnlab.runs.view import view
    from cnnlab.ui.common import executor

    at = _open("app_pages/train.py")
    at.number_input(key="train_n_train").set_value(4096)
    at.number_input(key="train_n_test").set_value(128)
    at.number_input(key="train_epochs").set_value(50)
    at.number_input(key="train_bs").set_value(32)
    at.button(key="train_start").click().run()
    assert_no_exception(at)
    ex, rid = executor(), at.session_state["train_job_pick"]
    t = time.time()
    while not view(ex, rid).steps:
        assert time.time() - t < 60 and ex.status(rid).active, ex.status(rid).message
        time.sleep(0.05)
    at.run()
    at.button(key="train_stop").click().run()
    assert ex.wait(rid, 30)
    at.run()
    assert_no_exception(at)
    assert any("应请求在第 " in w.value and "步" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not _english(at), _english(at)


def test_an_empty_choice_says_so_in_chinese(ckpt_root):
    """#21 §8: Streamlit's own "No options to select" showed on Saved runs in 中文 (a run with no epoch yet)."""
    save_tiny_run(ckpt_root, train_size=256, test_size=128, epochs=1)
    for p in ckpt_root.iterdir():  # no run has an epoch's metrics yet: nothing to compare
        if (p / "metrics.jsonl").exists():
            (p / "metrics.jsonl").write_text("")
    at = _open("app_pages/runs.py")
    boxes = at.multiselect
    assert boxes and all(b.placeholder in ("暂无可选项", "请选择") for b in boxes), [b.placeholder for b in boxes]
