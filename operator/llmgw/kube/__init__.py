"""The Kubernetes side: writing the objects and statuses the pure core decided on."""
