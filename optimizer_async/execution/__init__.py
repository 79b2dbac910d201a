"""A run's machinery: discovery, the engine (plan, apply, wait, verify), the replay of records
(rollback, plan files), results, progress, signals, the bake.

Imports `records`, `money`, `fleet`, `steps`, `definitions`, `jsonio`, `aws`.
"""
