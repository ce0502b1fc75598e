"""Attachments of a dossier: upload, list, download, delete."""

from ninja import Router

router = Router()
