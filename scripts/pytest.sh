#!/usr/bin/env bash
# Run the test suite; "no tests collected" (pytest's exit 5) is a failure, never a silent pass.
# Prints the suite's wall time, and writes each test's time to .pytest-times.xml (JUnit XML) for the slowest list.
# One test process more than cores (pytest-xdist; $CNNLAB_TEST_PROCS overrides, 0 runs in this process): a test
# process spends part of its time waiting (a page settling, a run it waits for training at a lower priority), and
# on 2 cores a third process fills those waits (610 → 575 s, 2026-12-05). A module runs whole in one of them
# (tests/conftest.py groups them).
PY=${1:-.venv/bin/python}
shift || true
start=$(date +%s)
PROCS=${CNNLAB_TEST_PROCS:-$(( $(nproc) + 1 ))}
"$PY" -m pytest -n "$PROCS" --dist loadgroup --junitxml=.pytest-times.xml "$@"
rc=$?
echo "pytest wall time: $(( $(date +%s) - start )) s (exit $rc, $(nproc) cores)"
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
