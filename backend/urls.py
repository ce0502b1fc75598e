from django.contrib import admin
from django.urls import path, re_path

from backend import guides, health
from backend.api import api
from backend.middleware import api_not_found
from documents.views import verify_page
from tracking.views import lookup_page

# Each app contributes one router; the order here is the order in the docs.
ROUTERS: list[tuple[str, str]] = [
    ("/auth", "auth.api"),
    ("/auth/national", "auth.national_api"),
    ("/organisations", "auth.organisations_api"),
    ("/support", "auth.support_api"),
    ("/catalogue", "dossiers.catalogue_api"),
    ("/dossiers", "dossiers.api"),
    ("/dossiers", "dossiers.attachments_api"),
    ("/dossiers", "dossiers.lifecycle_api"),
    ("/dossiers", "tracking.timeline_api"),
    ("/agency", "dossiers.agency.api"),
    ("/agency", "dossiers.agency.addresses"),
    ("/dossiers", "tracking.lookup_api:owner_router"),
    ("/dossiers", "documents.receipts_api"),
    ("/lookup", "tracking.lookup_api"),
    ("/dossiers", "documents.verification_api:holder_router"),
    ("/verify", "documents.verification_api"),
    ("/wallet", "documents.wallet_api"),
    ("/dossiers", "documents.wallet_api:dossier_router"),
    ("/agency", "dossiers.agency.results_api"),
    ("/realtime", "tracking.api"),
    ("/", "notifications.api"),
    ("/postal", "postal.api"),
    ("/payments", "payments.api"),
    ("/agency", "payments.agency_api"),
]

for prefix, target in ROUTERS:
    module_name, _, attribute = target.partition(":")
    module = __import__(module_name, fromlist=["router"])
    api.add_router(prefix, getattr(module, attribute or "router"))

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("lookup", lookup_page, name="lookup"),
    path("verify/<str:code>", verify_page, name="verify"),
    path("api/v1/guides/<slug:name>.md", guides.guide, name="guide"),
    path("api/v1/", api.urls),
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
]

handler400 = "backend.middleware.handler400"
handler403 = "backend.middleware.handler403"
handler404 = "backend.middleware.handler404"
handler500 = "backend.middleware.handler500"
