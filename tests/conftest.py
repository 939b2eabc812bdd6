"""Test-suite settings.

Hypothesis runs derandomized in CI (CI=true), so a run on a clean clone is
reproducible; locally it explores new examples each run.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
