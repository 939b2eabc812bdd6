"""Test-suite settings.

Hypothesis runs derandomized in CI (CI=true), so a run on a clean clone is
reproducible; locally it explores new examples each run.  Neither profile has a
deadline: a test never asserts how long an example took (a loaded machine makes
any deadline flaky; speed is measured in benchmarks/).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("local", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "local")
