"""A run, from its validated config to its report: what it replays (a fresh plan, a plan
file, before-images), one orchestration for every kind, its record, its store and leases,
the bake's rollbacks; `runs` and `savings`; and the command as a process (logging, exit
codes, the report on stdout).

Imports `reporting`, `permissions` and below.
"""
