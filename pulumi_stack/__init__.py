"""The baseline stack: one environment of the Lambda workload (see program.py)."""
