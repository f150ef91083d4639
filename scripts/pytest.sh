#!/usr/bin/env bash
# Run the test suite; "no tests collected" (pytest's exit 5) is a failure, never a silent pass.
# Prints the suite's wall time, and writes each test's time to .pytest-times.xml (JUnit XML) for the slowest list.
# Two test processes on two cores (one per core, pytest-xdist; $CNNLAB_TEST_PROCS overrides, 0 runs in this
# process): a module runs whole in one of them (tests/conftest.py groups them).
PY=${1:-.venv/bin/python}
shift || true
start=$(date +%s)
PROCS=${CNNLAB_TEST_PROCS:-auto}
"$PY" -m pytest -n "$PROCS" --dist loadgroup --junitxml=.pytest-times.xml "$@"
rc=$?
echo "pytest wall time: $(( $(date +%s) - start )) s (exit $rc, $(nproc) cores)"
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
