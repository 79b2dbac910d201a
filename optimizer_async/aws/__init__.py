"""Everything that knows about AWS: its limits, its API quotas, and (only here) its clients."""
