"""Which environments a run covers: finding them (`--all`), the accounts file, shards.

Imports `steps`, `definitions`, `aws`.
"""
