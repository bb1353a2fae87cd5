"""Time limits of a live collection, apart from sources/live.py so the command line can show them without
importing the kubernetes client."""

from __future__ import annotations

# Per request (the wait for each response read). kube-apiserver's own --request-timeout defaults to 60 s, so a
# request that takes longer is not coming back.
REQUEST_TIMEOUT_S = 60.0
# Per run. The CronJob in deploy/ ends the pod after activeDeadlineSeconds 14400 (4 h); stopping collection at 3 h
# leaves an hour to evaluate, render and write the pack, so the deadline produces a pack instead of a killed pod.
DEFAULT_RUN_TIMEOUT_S = 10800.0
