"""Agencies' back-office systems (server to server, HMAC-signed)."""

from ninja import Router

router = Router()
