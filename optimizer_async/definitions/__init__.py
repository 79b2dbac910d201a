"""What an environment is, shared by the optimizer, the Pulumi stack and the sandbox: its names
(`{resource}-{suffix}`), the baseline and target values, the environment's spec, the
function's package, the targets file.

Imports only `aws` (AWS's limits).
"""
