from django.contrib import admin
from django.urls import path, re_path

from backend import guides, health
from backend.api import api
from backend.middleware import api_not_found

# Each app contributes one router; the order here is the order in the docs.
ROUTERS: list[tuple[str, str]] = [
    ("/auth", "auth.api"),
    ("/organisations", "auth.organisations_api"),
    ("/support", "auth.support_api"),
    ("/catalogue", "dossiers.catalogue_api"),
    ("/dossiers", "dossiers.api"),
    ("/dossiers", "dossiers.attachments_api"),
    ("/dossiers", "dossiers.lifecycle_api"),
    ("/dossiers", "tracking.timeline_api"),
    ("/agency", "dossiers.agency.api"),
    ("/agency", "dossiers.agency.addresses"),
    ("/realtime", "tracking.api"),
    ("/", "notifications.api"),
    ("/postal", "postal.api"),
]

for prefix, module_name in ROUTERS:
    module = __import__(module_name, fromlist=["router"])
    api.add_router(prefix, module.router)

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/guides/<slug:name>.md", guides.guide, name="guide"),
    path("api/v1/", api.urls),
    re_path(r"^api/", api_not_found),
    path("admin/", admin.site.urls),
]

handler400 = "backend.middleware.handler400"
handler403 = "backend.middleware.handler403"
handler404 = "backend.middleware.handler404"
handler500 = "backend.middleware.handler500"
