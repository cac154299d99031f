"""What limits each figure: written by hand after profiling, kept with the code so a rerun keeps it."""

NOTES = """
## What limits the figures

(see below)
"""
