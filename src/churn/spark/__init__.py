"""The Spark engine (`--engine spark`): the same contract, cleaning and model, on a cluster.

Needs the `spark` extra (pyspark, Java 17+); nothing else in churn imports it.
"""
