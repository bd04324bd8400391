"""The servable model: the MLflow pyfunc that training logs and deployment loads.

It takes raw records and scores them through the shared contract and cleaning in
`churn.core`; every module it loads is part of its identity (`servable.code_digest`).
"""
