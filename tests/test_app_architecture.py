"""AppTest of the Architecture page: knobs change params and trace, bad knobs show st.error, the URL round-trips."""
import json

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60


def _app(**params) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _metrics(at: AppTest) -> dict:
    return {m.label: (m.value, m.proto.body) for m in at.metric}


def _metric_values(at):
    return [m.value for m in at.metric]


def _trace(at) -> dict:
    return json.loads(at.get_by_key("arch_trace_fig").proto.spec)


def test_default_page_renders_lenet():
    at = _app()
    _ok(at)
    assert at.selectbox(key="arch_arch").value == "lenet"
    assert _metric_values(at)[0] == "61.71 K"  # LeNet's 61,706 parameters
    spec = _trace(at)
    assert [d["name"] for d in spec["data"]] == ["height × width", "channels"]
    assert at.dataframe[0].value.shape[0] >= 10
    assert not at.error


def test_vgg_ratio_changes_params_trace_and_url():
    at = _app()
    at.selectbox(key="arch_arch").set_value("vgg").run()
    _ok(at)
    before, trace_before = _metric_values(at), _trace(at)
    assert before[0] == "128.81 M"
    at.slider(key="arch_k_vgg_ratio").set_value(4).run()
    _ok(at)
    after, trace_after = _metric_values(at), _trace(at)
    assert after[0] != before[0] and after[1] != before[1]
    deltas = [m.delta for m in at.metric]
    assert all("× the default" in d for d in deltas), deltas
    ch_before = trace_before["data"][1]["y"]
    ch_after = trace_after["data"][1]["y"]
    assert max(ch_after) < max(ch_before)  # a quarter of the channels (the dense layers' widths stay)
    assert at.query_params["arch"] == "vgg" and at.query_params["ratio"] == "4"


def test_spatial_size_shrinks_while_channels_grow():
    at = _app(arch="resnet")
    _ok(at)
    data = _trace(at)["data"]
    hw, ch = data[0]["y"], data[1]["y"]
    assert hw[0] == 96 * 96 and hw[-2] < hw[1]  # input 96×96 → small maps before the head
    assert ch[0] == 1 and max(ch) == 512


def test_bad_knobs_show_error_not_traceback():
    at = _app()
    at.selectbox(key="arch_arch").set_value("vgg").run()
    at.number_input(key="arch_res_vgg").set_value(20).run()
    _ok(at)
    assert any("resolution must be at least 32" in e.value for e in at.error)
    assert not at.metric  # nothing half-drawn
    at.selectbox(key="arch_arch").set_value("densenet").run()
    at.text_input(key="arch_k_densenet_block_config").input("4,0,4").run()
    _ok(at)
    assert any("block_config must be" in e.value for e in at.error)
    at.text_input(key="arch_k_densenet_block_config").input("6,12,24,16").run()
    _ok(at)
    assert not at.error and at.metric


def test_url_opens_the_same_view_and_alpha_quarter_macs():
    at = _app(arch="mobilenet_v1", alpha="0.5")
    _ok(at)
    assert at.selectbox(key="arch_arch").value == "mobilenet_v1"
    assert at.number_input(key="arch_k_mobilenet_v1_alpha").value == 0.5
    macs_delta = [m.delta for m in at.metric][1]
    assert "0.26×" in macs_delta or "0.27×" in macs_delta, macs_delta  # ≈ α² (MobileNet paper, Table 6)


def test_bad_url_value_warns_and_falls_back():
    at = _app(arch="vgg", ratio="0", res="abc")
    _ok(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "ratio must be an integer in 1..64" in warnings and "resolution" in warnings
    assert at.slider(key="arch_k_vgg_ratio").value == 1
    assert at.metric


def test_densenet_block_config_preset_and_language():
    at = _app(arch="densenet")
    at.selectbox(key="arch_k_densenet_block_config__preset").set_value("6,12,24,16").run()
    _ok(at)
    assert at.text_input(key="arch_k_densenet_block_config").value == "6,12,24,16"
    at.radio(key="lang").set_value("zh").run()
    _ok(at)
    assert at.title[0].value == "网络结构浏览器"
    assert any("增长率" in s.label for s in at.slider)
    assert at.text_input(key="arch_k_densenet_block_config").value == "6,12,24,16"  # kept across the switch


def test_state_survives_a_page_switch():
    at = _app()
    at.selectbox(key="arch_arch").set_value("vgg").run()
    at.slider(key="arch_k_vgg_ratio").set_value(8).run()
    at.switch_page("app_pages/runs.py").run()
    _ok(at)
    at.switch_page("app_pages/architecture.py").run()
    _ok(at)
    assert at.selectbox(key="arch_arch").value == "vgg"
    assert at.slider(key="arch_k_vgg_ratio").value == 8


@pytest.mark.parametrize("arch", ["lenet", "alexnet", "vgg", "nin", "googlenet", "resnet", "densenet",
                                  "mobilenet_v1", "mobilenet_v2", "mobilenet_v3"])
def test_every_arch_renders_from_cold_caches_with_the_librarys_figures(arch):
    """Each book model renders with the shared cache cold (the measurements), and the ledger shows the figures the
    library computes for it. (Speed is measured by bench/bench_probe.py, not here.)"""
    from cnnlab import registry
    from cnnlab.caches import CACHE
    from cnnlab.measure import config_key, measure
    from cnnlab.probe import human

    at = _app(arch=arch)
    _ok(at)
    CACHE.clear()
    at.run()
    _ok(at)
    cfg = registry.resolve(arch)
    assert ("measure",) + config_key(cfg) in CACHE   # the page really measured again
    cost = measure(cfg).cost
    shown = [m.value for m in at.metric][:3]
    assert shown == [human(cost.params), human(cost.macs), human(cost.activation_bytes, "B")], shown


def test_a_config_is_measured_once_and_too_small_keeps_its_message(monkeypatch):
    """The page, the limits and the library read one measurement per config: asked again (another session, the
    CLI's check, admission), it is not made again. One that does not fit gets the sentence naming the smallest
    input, the same on the page as from the library, with the trace up to that layer."""
    from cnnlab import measure as M
    from cnnlab.caches import CACHE
    from cnnlab.errors import InputTooSmall
    from cnnlab.budget import check_model
    from cnnlab.ui.common import probe_config

    CACHE.clear()
    made = []
    real = M._measure

    def counted(cfg):
        made.append(cfg)
        return real(cfg)
    monkeypatch.setattr(M, "_measure", counted)
    cfg, p = probe_config("vgg", {"ratio": 4}, resolution=96)
    assert cfg.resolution == 96 and p.cost.params > 0
    assert probe_config("vgg", {"ratio": "4"}, resolution=96)[1] is p
    assert M.fitting("vgg", {"ratio": 4}, resolution=96) == cfg and check_model(cfg).params == p.cost.params
    assert made == [cfg]
    with pytest.raises(InputTooSmall) as page:
        probe_config("lenet", {}, resolution=4)
    with pytest.raises(InputTooSmall) as lib:
        M.fitting("lenet", {}, resolution=4)
    assert str(page.value) == str(lib.value) and "must be at least 12" in str(page.value)
    assert page.value.steps and page.value.steps[-1].too_small and len(made) == 2


def test_reset_restores_the_defaults():
    at = _app(arch="vgg", ratio="4", res="96")
    assert at.slider(key="arch_k_vgg_ratio").value == 4
    at.button(key="arch_reset").click().run()
    _ok(at)
    assert at.slider(key="arch_k_vgg_ratio").value == 1
    assert at.number_input(key="arch_res_vgg").value == 224
    assert "ratio" not in at.query_params and at.query_params["arch"] == "vgg"


# -- layer arithmetic (issue #14 §1) ---------------------------------------------------------------------

def _table(at):
    return at.dataframe[0].value


def test_layer_table_has_the_window_numbers_and_receptive_field():
    """LeNet (d2l 7.6): conv 5/1/2 → RF 5; pool 2/2 → 5 + 1·1 = 6; conv 5/1/0 → 6 + 4·2 = 14; pool → 14 + 1·2 = 16
    (worked by hand); layers without a window have none, the flattened head no field."""
    at = _app()
    _ok(at)
    df = _table(at)
    cols = ["#", "layer", "type", "output shape", "kernel", "stride", "padding", "groups", "receptive field (px)"]
    assert list(df.columns[:len(cols)]) == cols and "dilation" not in df.columns
    windows = df[df["kernel"] != ""]
    assert windows[["layer", "kernel", "stride", "padding", "receptive field (px)"]].values.tolist() == [
        ["0", "5", "1", "2", "5"], ["2", "2", "2", "0", "6"], ["3", "5", "1", "0", "14"], ["5", "2", "2", "0", "16"]]
    assert df[df["type"] == "Linear"]["receptive field (px)"].tolist() == ["", "", ""]
    assert df["#"].tolist() == list(range(1, len(df) + 1))


def test_explain_a_layer_works_out_its_own_numbers():
    """AlexNet at 224 (d2l 8.1): conv 11/4/1 gives ⌊(224 − 11 + 2·1)/4⌋ + 1 = 54 (the book prints 54×54);
    the 3×3 max-pool with stride 2 then gives ⌊(54 − 3 + 0)/2⌋ + 1 = 26, field 11 + 2·4 = 19."""
    at = _app(arch="alexnet")
    _ok(at)
    box = at.selectbox(key="arch_explain")
    assert box.value == 1 and box.format_func(1) == "#1 · 0 (Conv2d)"
    texts = [t.value for t in at.text]
    assert "⌊(224 − 11 + 2·1)/4⌋ + 1 = 54" in texts and "r = 1 + (11 − 1)·1 = 11, j = 1·4 = 4" in texts
    assert any(r"\frac{224 - 11 + 2 \cdot 1}{4}" in x.value and x.value.strip("$\n").endswith("= 54") for x in at.latex)
    box.set_value(3).run()
    _ok(at)
    texts = [t.value for t in at.text]
    assert "#3 · 2 (MaxPool2d)" in texts
    assert "⌊(54 − 3 + 2·0)/2⌋ + 1 = 26" in texts and "r = 11 + (3 − 1)·4 = 19, j = 4·2 = 8" in texts
    assert [o for o in at.selectbox(key="arch_explain").options] == [
        "#1 · 0 (Conv2d)", "#3 · 2 (MaxPool2d)", "#4 · 3 (Conv2d)", "#6 · 5 (MaxPool2d)", "#7 · 6 (Conv2d)",
        "#9 · 8 (Conv2d)", "#11 · 10 (Conv2d)", "#13 · 12 (MaxPool2d)"]


def test_receptive_field_chart_against_the_input_size():
    at = _app()  # LeNet at 28: conv 5, sigmoid 5, pool 6, conv 14, sigmoid 14, pool 16 (worked by hand above)
    _ok(at)
    spec = json.loads(at.get_by_key("arch_rf_fig").proto.spec)
    rf, size = spec["data"]
    assert rf["x"] == ["#1", "#2", "#3", "#4", "#5", "#6"] and rf["y"] == [5, 5, 6, 14, 14, 16]
    assert size["y"] == [28] * 6
    at = _app(arch="resnet", res="224")  # blocks: stem 11, stages 43, 99, 211, 435, global pool 435 + 6·32
    _ok(at)
    rf = json.loads(at.get_by_key("arch_rf_fig").proto.spec)["data"][0]
    assert rf["y"] == [11, 43, 99, 211, 435, 627]
    at.radio(key="arch_trace_detail__en").set_value("layers").run()  # every layer: the bars' numbers again
    rf = json.loads(at.get_by_key("arch_rf_fig").proto.spec)["data"][0]
    assert rf["x"] == [x for x in _trace(at)["data"][0]["x"][1:] if x in rf["x"]] and len(rf["x"]) >= 30


def test_trace_bars_carry_the_table_numbers_and_names():
    """Each bar of the shape trace is labelled '#n' with the table's number n and hovers the table's name."""
    at = _app(arch="googlenet")
    at.radio(key="arch_trace_detail__en").set_value("layers").run()
    _ok(at)
    df = _table(at)
    data = _trace(at)["data"][0]
    for x, hover in list(zip(data["x"], data["hovertext"]))[1:]:
        n = int(x.lstrip("#"))
        row = df[df["#"] == n].iloc[0]
        assert hover.startswith(f"#{n} · {row['layer'].strip()} ({row['type']})<br>C×H×W = {row['output shape']}")
    assert data["x"][0] == "input"
    assert any("2.0.b1_1" in h for h in data["hovertext"])  # a leaf inside an Inception block, by its table name
    at.radio(key="arch_trace_detail__en").set_value("blocks").run()
    blocks = _trace(at)["data"][0]["x"][1:]
    assert blocks == [f"#{n}" for n, d in zip(df["#"], df["layer"]) if not d.startswith("\u2003")]


def test_input_too_small_shows_the_trace_up_to_that_layer():
    """AlexNet at 32 px: 32 → ⌊(32 − 11 + 2)/4⌋ + 1 = 6 → pool 2 → conv 2 → the 3×3 pool gets 2×2 and would give
    ⌊(2 − 3 + 0)/2⌋ + 1 = 0. The page says "input too small", lists those six layers and that formula."""
    at = _app(arch="alexnet", res="32")
    _ok(at)
    assert len(at.error) == 1 and not at.metric
    assert "Input too small for this network: input too small: layer 5 (MaxPool2d) gets 2×2" in at.error[0].value
    assert "cannot be built" not in at.error[0].value
    df = _table(at)
    assert df["layer"].tolist() == ["0", "1", "2", "3", "4", "5"]
    assert df["output shape"].tolist() == ["96×6×6", "96×6×6", "96×2×2", "256×2×2", "256×2×2", "256×0×0"]
    texts = [t.value for t in at.text]
    assert "#6 · 5 (MaxPool2d)" in texts and "⌊(2 − 3 + 2·0)/2⌋ + 1 = 0" in texts


def test_layer_arithmetic_in_chinese():
    at = _app(arch="resnet")
    at.radio(key="lang").set_value("zh").run()
    _ok(at)
    cols = list(_table(at).columns)
    assert {"卷积核", "步幅", "填充", "分组数", "感受野（像素）"} <= set(cols)
    assert at.selectbox(key="arch_explain").label == "讲解一层"
