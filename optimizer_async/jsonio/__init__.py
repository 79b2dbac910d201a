"""JSON as the product reads and writes it: written piece by piece (a report streamed, never
held whole), read strictly (a key given twice refused).

Imports nothing of the product's.
"""
