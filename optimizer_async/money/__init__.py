"""What changes cost and save: money lines summed, the account's bill tier by tier, realised
savings measured after a run.

Imports `steps`, `definitions`, `aws` (prices, the gateway).
"""
