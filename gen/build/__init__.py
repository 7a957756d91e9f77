"""Pure builders: a validated spec in, the per-cluster parts of an overlay out.

One module per component. Nothing here reads files, the clock or the environment.
"""
