import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# In CI (`make test` installed the data, chromium and playwright) a skipped test means a missing install
# step, not an optional extra: fail the run instead of passing with fewer tests. Skips that depend on the
# machine rather than on installs are allowed.
ALLOWED_CI_SKIPS = ("GPU", "live BN run")

# Every AppTest session is a new owner from one address ("local"): hundreds a minute in one test run, where the
# server's limit on new owners per address (40 a minute, against cookie flooding) would stop them from starting
# runs. Its own tests set it (tests/test_hostile_queue_browser.py, cnnlab.owners.Minter).
os.environ.setdefault("CNNLAB_NEW_OWNERS_PER_MIN", "1000000")
_bad_skips: list[str] = []

# -- Two test processes on two cores (pytest-xdist, scripts/pytest.sh) -------------------------------------------
# Each module runs whole in one process (--dist loadgroup, a group per module), so a module's Streamlit server,
# browser and Ray cluster start once; the two Ray modules share one group (one local cluster). The modules that
# take longest go first (--no-loadscope-reorder keeps this order), so no minute-long module starts last while
# the other process has nothing left. Measured on 2 cores (2026-12-05), slowest first; a module not named here
# runs after these, in file order.
SLOW_FIRST = ("test_class_browser", "test_hostile_queue_browser", "test_layout_browser", "test_diagram_browser",
              "test_two_servers", "test_admission_rss", "test_runs_ray", "test_runs_contract", "test_e2e_browser",
              "test_teacher_browser", "test_runs_local", "test_load_small", "test_first_page_browser",
              "test_hostile_e2e", "test_teacher", "test_models", "test_train_cli", "test_hostile_upload",
              "test_export", "test_class_queue", "test_export_notebooks")
SHARED_GROUPS = {"test_runs_ray": "ray", "test_runs_contract": "ray"}  # the session's one Ray cluster


def _module(item) -> str:
    return item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    rank = {m: i for i, m in enumerate(SLOW_FIRST)}
    items.sort(key=lambda it: rank.get(_module(it), len(rank)))  # stable: file order within and after
    for it in items:
        it.add_marker(pytest.mark.xdist_group(SHARED_GROUPS.get(_module(it), _module(it))))


def pytest_runtest_logreport(report):
    if report.skipped and os.environ.get("CI"):
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(ok in reason for ok in ALLOWED_CI_SKIPS):
            _bad_skips.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    pytest_runtest_logreport(report)


def pytest_sessionfinish(session, exitstatus):
    if _bad_skips and exitstatus == 0:
        print("\nCI: these tests were skipped for a missing prerequisite that make test should install:")
        for s in _bad_skips:
            print("  " + s)
        session.exitstatus = 1


# -- Ray (helper H4b): a real local Ray, started once per session, for the Ray and contract tests ------------


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster of 2 CPUs (GPUs as detected), started by this test session, shut down after."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-ray.txt)")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": ROOT}})
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_executor(ray_cluster, tmp_path):
    """A RayExecutor on the session's local Ray (default per-owner limits), run folders under tmp_path."""
    from cnnlab.runs.base import Limits
    from cnnlab.runs.ray_executor import RayExecutor

    ex = RayExecutor(limits=Limits(), out_dir=str(tmp_path / "ray-checkpoints"))
    yield ex
    ex.shutdown()
