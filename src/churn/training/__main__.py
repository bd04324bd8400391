"""`python -m churn.training`: the DVC stage, without loading the rest of the command line."""

import sys

from churn.entry import stage_main

sys.exit(stage_main("churn.training.stage"))
