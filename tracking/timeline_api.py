"""A dossier's timeline: every step, progress, appointment and remaining time."""

from ninja import Router

router = Router()
