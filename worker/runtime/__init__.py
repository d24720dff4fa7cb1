"""What runs inside a container: the app, served over the Container service."""
