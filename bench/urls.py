"""The real URLconf plus a django-ninja hello-world API, served only by bench/asgi.py.

The hello endpoint is the baseline of the HTTP benchmarks: same server, same flags,
same middleware, no database. It never exists in the production API.
"""

from django.http import HttpRequest
from django.urls import path
from ninja import NinjaAPI

from backend.urls import handler400, handler403, handler404, handler500, urlpatterns

hello_api = NinjaAPI(urls_namespace="bench_hello", docs_url=None, openapi_url=None)


@hello_api.get("/hello")
def hello(request: HttpRequest) -> dict[str, str]:
    return {"message": "Hello, world"}


urlpatterns = [path("bench/", hello_api.urls), *urlpatterns]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
