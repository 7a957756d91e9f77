"""The cluster spec, the fleet file and the defaults: loaded with positions, validated, with every rule."""
