"""AppTest of the Architecture page: knobs change params and trace, bad knobs show st.error, the URL round-trips."""
import json
import time

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
    at.switch_page("pages/runs.py").run()
    _ok(at)
    at.switch_page("pages/architecture.py").run()
    _ok(at)
    assert at.selectbox(key="arch_arch").value == "vgg"
    assert at.slider(key="arch_k_vgg_ratio").value == 8


@pytest.mark.parametrize("arch", ["lenet", "alexnet", "vgg", "nin", "googlenet", "resnet", "densenet",
                                  "mobilenet_v1", "mobilenet_v2", "mobilenet_v3"])
def test_every_arch_updates_fast(arch):
    """Each book model renders; a knob update (uncached probe + redraw) stays well under a second on CPU."""
    from cnnlab.ui.common import _probe_cached

    at = _app(arch=arch)
    _ok(at)
    _probe_cached.clear()
    t = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t
    _ok(at)
    assert at.metric
    assert elapsed < 1.5, f"{arch}: {elapsed:.2f} s"  # target 0.3 s; slack for a busy 2-core CI box


def test_reset_restores_the_defaults():
    at = _app(arch="vgg", ratio="4", res="96")
    assert at.slider(key="arch_k_vgg_ratio").value == 4
    at.button(key="arch_reset").click().run()
    _ok(at)
    assert at.slider(key="arch_k_vgg_ratio").value == 1
    assert at.number_input(key="arch_res_vgg").value == 224
    assert "ratio" not in at.query_params and at.query_params["arch"] == "vgg"
