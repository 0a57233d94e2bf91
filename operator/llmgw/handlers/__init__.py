"""kopf handlers: thin. They keep indexes of the world and wake the reconciler."""
