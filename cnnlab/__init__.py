"""CNN Lab: the modern CNNs of Dive into Deep Learning ch. 6-8, measured, trained and explained."""
import os as _os

# Training threads that wait for each other sleep instead of spinning (set before torch starts, so the server,
# its load probe and every worker it spawns agree). Spinning threads of a run at a lower priority made runs on a
# shared 2-core machine 15-70x slower than quiet (20,000 quick-demo examples: 59-81 s spinning, 7.5 s passive;
# bench/bench_estimates.py) and the time estimates 87 % off (14 % passive). Set OMP_WAIT_POLICY to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import models as _models  # noqa: E402,F401  (each family registers itself in cnnlab.registry)
