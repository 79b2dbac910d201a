"""One module per command: its arguments parsed and validated into its own typed config, then
called. Bad input stops here: one line, exit 2, before any AWS call.

Imports everything below it, the heavy parts only once the input is valid.
"""
