import os

from hypothesis import settings

# CI runs the same examples every time (derandomize) and never fails on a slow example.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
