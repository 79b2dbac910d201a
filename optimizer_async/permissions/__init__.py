"""The optimizer's own least-privilege IAM policy, built from what the steps declare.

Imports `execution` and below.
"""
