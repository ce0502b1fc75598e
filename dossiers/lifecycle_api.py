"""Citizen-side lifecycle routes: answering a supplement request, and the like."""

from ninja import Router

router = Router()
