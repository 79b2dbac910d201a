"""What runs keep and replay: the state stores (a local directory or an S3 bucket), leases,
before-images, plan files and apply's check of them.

Imports `steps`, `definitions`, `jsonio`, `aws`.
"""
