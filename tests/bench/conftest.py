"""The benchmarks are scripts, run by hand or in CI's benchmark job, never collected by pytest."""

collect_ignore_glob = ["*.py"]
