"""From validated specs to overlay files: layout, rendering in workers, the render cache, atomic writes."""
