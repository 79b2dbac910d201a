"""`lambda-optimizer serve`: the optimizer as a long-lived service (see `serve.py`)."""
