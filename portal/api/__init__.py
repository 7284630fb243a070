"""The REST API framework shared by every app's api/ package: auth, errors, pagination, idempotency, rate limits."""
