"""Plugins for LocalStack in host mode, on a machine with no container engine and no internet.

- ``lambda_executor``: LAMBDA_RUNTIME_EXECUTOR=noop, Lambda's control plane without containers.
- ``offline``: an on_infra_start hook that keeps LocalStack from a DNS look-up of its own.
"""
