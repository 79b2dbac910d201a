"""`make bench`: the optimizer against its quota floor and a sequential reference (bench/run.py)."""
