"""What a change does: built manifests compared per object, with impact and provenance."""
