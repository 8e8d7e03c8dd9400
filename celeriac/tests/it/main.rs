//! Integration tests against real Redis and real Celery.
