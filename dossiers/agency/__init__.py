"""Agencies' back-office systems: server-to-server, HMAC-signed (mobile_api_docs/agency-api.md).

- credentials.py: actions that create, rotate and retire an agency's keys (secrets at rest),
- signing.py: the request signature and the ninja auth that checks it,
- replays.py: an action runs at most once per X-Event-Id (backend/idempotency.py),
- access.py: what an agency may see (its own submitted dossiers; 404 otherwise),
- api.py: the routes.
"""
