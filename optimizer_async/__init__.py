"""lambda-optimizer: bring Lambda environments from baseline to optimised settings."""

__version__ = "0.1.0"
