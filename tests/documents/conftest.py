from tests.dossiers.conftest import (  # noqa: F401  # shared fixtures
    _fast_password_hashing,
    _media_root,
    agency,
    agency_client,
    other_agency_client,
)
