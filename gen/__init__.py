"""gen: cluster specs in, Kustomize overlays for a continuous-profiling stack out."""

__version__ = "0.1.0"
