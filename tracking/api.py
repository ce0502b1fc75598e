"""Realtime tickets and dossier timelines."""

from ninja import Router

router = Router()
