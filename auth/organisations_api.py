"""Organisations (businesses), members and invitations."""

from ninja import Router

router = Router()
