"""The optimisations, one module each; `steps.registry` is the one list of them.

`steps.base` is the contract every step keeps (see docs/adding-an-optimisation.md). Modules
here that define a part but no step (`secrets`, `usage`) hold what several steps consult.
"""
