"""`jobctl bench`: jobctl measured side by side with raw Celery in one run, on the same machine (issue 6)."""
