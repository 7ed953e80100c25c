"""The service's URL map plus the benchmarks' own endpoints."""

from django.urls import path

from bench.api import AccessCacheStatsApi, FloorApi
from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as project_urlpatterns

# Last, so that resolving the floor walks the project's patterns as a real request does.
urlpatterns = [
    *project_urlpatterns,
    path("bench/floor/", FloorApi.as_view(), name="bench-floor"),
    path("bench/access-cache/", AccessCacheStatsApi.as_view(), name="bench-access-cache"),
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
