import os
import shutil
import sys
import tempfile

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
    split = _split_groups()
    if split:  # each would have started its server (or Ray cluster) once in every process
        print(f"\nTest groups split across test processes (is pytest-xdist's --dist loadgroup working?): {split}")
        session.exitstatus = 1


# -- Test processes (pytest-xdist, scripts/pytest.sh: one more than cores) ------------------------------------
# Each module runs whole in one process (--dist loadgroup, a group per module), so a module's Streamlit server,
# browser and Ray cluster start once; modules that share a server share a group. pytest 9.2 silently broke the
# groups (xdist writes them into the node id, which 9.2 no longer reads: pytest-dev/pytest-xdist#1386): every
# module's tests went to both processes, and each started its own server there. requirements-dev.txt keeps
# pytest below 9.2, and pytest_sessionfinish below fails a run whose groups were split.
SHARED_GROUPS = {"test_runs_ray": "ray", "test_runs_contract": "ray",  # the session's one Ray cluster
                 # one lesson server (class_app below)
                 "test_class_browser": "class", "test_layout_browser": "class",
                 # one plain app server (plain_app below)
                 "test_e2e_browser": "plain", "test_diagram_browser": "plain"}


def pytest_configure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER") and getattr(config.option, "numprocesses", None):
        # the test processes write each test's group here; they inherit the variable
        os.environ["CNNLAB_TEST_GROUPS"] = tempfile.mkdtemp(prefix="cnnlab-test-groups-")


def pytest_runtest_setup(item):
    where, worker = os.environ.get("CNNLAB_TEST_GROUPS"), os.environ.get("PYTEST_XDIST_WORKER")
    mark = item.get_closest_marker("xdist_group")
    if where and worker and mark:
        with open(os.path.join(where, worker), "a") as f:
            f.write(mark.args[0] + "\n")


def _split_groups() -> dict[str, list[str]]:
    """The groups whose tests ran in more than one test process (read in the controlling process)."""
    where = os.environ.get("CNNLAB_TEST_GROUPS")
    if not where or os.environ.get("PYTEST_XDIST_WORKER") or not os.path.isdir(where):
        return {}
    seen: dict[str, set] = {}
    for worker in os.listdir(where):
        with open(os.path.join(where, worker)) as f:
            for group in f.read().split():
                seen.setdefault(group, set()).add(worker)
    shutil.rmtree(where, ignore_errors=True)
    return {g: sorted(w) for g, w in seen.items() if len(w) > 1}


def pytest_itemcollected(item):
    """Each test's group, marked as it is collected (xdist reads the marks in its pytest_collection_modifyitems)."""
    module = item.path.stem
    item.add_marker(pytest.mark.xdist_group(SHARED_GROUPS.get(module, module)))


# -- One plain app server (the "plain" group): the walk through every page and the diagram measurements -------
@pytest.fixture(scope="session")
def plain_app(tmp_path_factory):
    """`streamlit run app.py` as a student runs it, saving runs to a temporary folder; yields its base URL. One per
    test process, kept to the session's end (its modules share an xdist group)."""
    from test_e2e_browser import streamlit_server

    with streamlit_server(tmp_path_factory.mktemp("e2e_ckpt"),
                          tmp_path_factory.mktemp("e2e_log") / "streamlit.log") as (base, _):
        yield base


# -- One lesson server (the "class" group): the class and layout browser modules walk the same app -------------
@pytest.fixture(scope="session")
def class_app(tmp_path_factory):
    """`streamlit run app.py` with teacher mode on (CLASS_PASSWORD) and exercise pairs on 256 examples for one
    epoch; yields (base URL, its checkpoint folder). One per test process, kept to the session's end: the modules
    that use it share an xdist group, so it starts once (an app server's first page costs ~13 CPU-seconds)."""
    from helpers import CLASS_PASSWORD
    from test_e2e_browser import streamlit_server

    root = tmp_path_factory.mktemp("class_ckpt")
    env = {"CNNLAB_TEACHER_PASSWORD": CLASS_PASSWORD, "CNNLAB_EXERCISE_TINY": "1", "CNNLAB_TEACHER_TOKEN": None}
    with streamlit_server(root, tmp_path_factory.mktemp("class_log") / "streamlit.log", env) as (base, _):
        yield base, root


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
