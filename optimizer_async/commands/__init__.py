"""One module per command, each a `Command` (`base.py`) in one registry: its parser, its
arguments validated into its own typed config (`runs/configs.py`), then run. Bad input stops
here: one line, exit 2, before any AWS call.

Imports everything below it; the heavy parts (the AWS SDK, the engine, the report) only in
a command's `execute`, once its input is valid.
"""
