"""Is the lock up to date with requirements.txt? Every requirement there must be pinned in requirements.lock or
requirements-torch.lock at a version it allows (the image installs only the locks, so a package added to
requirements.txt but not locked would be missing from it). Exit 1 with what is missing; run scripts/lock.sh.

    python scripts/lock_check.py        # `make setup` and scripts/space_smoke.sh run it
"""
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins(path):
    return {canonicalize_name(m[1]): m[2]
            for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+)", path.read_text(), re.M)}


def main():
    locked = pins(ROOT / "requirements.lock") | pins(ROOT / "requirements-torch.lock")
    problems = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name}: in requirements.txt, not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: requirements.txt asks {req.specifier}, the lock has {version}")
    if problems:
        print("the lock is out of date with requirements.txt (run: bash scripts/lock.sh):", *problems,
              sep="\n  ", file=sys.stderr)
        return 1
    print(f"lock: {len(locked)} packages, every requirement of requirements.txt among them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
