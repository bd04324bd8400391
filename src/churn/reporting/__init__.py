"""Reporting: the pull-request review report (`churn report --base <ref>`)."""
