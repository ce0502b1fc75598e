"""Citizens' dossiers: drafts, submission, and what follows."""

from ninja import Router

router = Router()
