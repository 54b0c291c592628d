"""The ``docker`` target: the serving image as a container on the local Docker Engine."""
