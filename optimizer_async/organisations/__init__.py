"""Many accounts and regions at once: every place run side by side, and shards' reports merged.

Imports `runs` and below.
"""
