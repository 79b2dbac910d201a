"""A run orchestrated: its record, its leases, its engine and its report, as one sequence of
named steps.

Imports `reporting`, `permissions` and below.
"""
