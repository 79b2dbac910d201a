"""What people read: the run's report (table, JSON, Markdown), the organisation's, what fits a
terminal, the logs.

Imports `execution` and below.
"""
