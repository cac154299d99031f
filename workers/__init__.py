"""Celery side of jobctl: the app, the step runtime (progress, logs, stopping, resources) and job types."""
