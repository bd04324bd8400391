"""`python -m benchmarks` (`make bench`): the pipeline, its bare scikit-learn yardstick,
batch scoring, REST latency and the monitor, at simulated sizes, in one table."""
