"""The worker daemon: containers, images and GPUs of one machine."""
