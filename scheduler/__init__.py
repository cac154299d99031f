"""The jobctl domain: job states, the store, targets, operations and the dispatch loop.

Nothing in this package imports Celery or FastAPI; Celery is reached through `scheduler.executor.Executor`.
"""
