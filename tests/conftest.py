import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# In CI (`make test` installed the data, chromium and playwright) a skipped test means a missing install
# step, not an optional extra: fail the run instead of passing with fewer tests. Skips that depend on the
# machine rather than on installs are allowed.
ALLOWED_CI_SKIPS = ("GPU", "live BN run")
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
