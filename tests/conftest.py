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


# -- Two test processes on two cores (pytest-xdist, scripts/pytest.sh) -------------------------------------------
# Each module runs whole in one process (--dist loadgroup, a group per module), so a module's Streamlit server,
# browser and Ray cluster start once; the two Ray modules share one group (one local cluster). xdist hands the
# groups out by their number of tests, most first, which mixes the few-test browser modules with the many-test
# quick ones: putting the slowest browser modules first instead ran two of them side by side, which took longer
# on 2 cores (798 against 771 s) and made their waits flaky.
SHARED_GROUPS = {"test_runs_ray": "ray", "test_runs_contract": "ray"}  # the session's one Ray cluster


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for it in items:
        module = it.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        it.add_marker(pytest.mark.xdist_group(SHARED_GROUPS.get(module, module)))


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
