"""tokenomy.workloads."""
