"""What the built manifests must be: kustomize builds, schemas, limits, Argo CD checks, secrets."""
