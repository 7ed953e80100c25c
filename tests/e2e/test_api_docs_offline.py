"""The API docs work on a machine without internet: Swagger UI comes from our own static files."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect
from pytest_django.live_server_helper import LiveServer

pytestmark = pytest.mark.e2e

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def test_api_docs_render_every_operation_with_the_network_cut_off(live_server: LiveServer, page: Page):
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_local)
    page.goto(live_server.url + "/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Cinema billing API")
    expect(
        page.locator(".opblock-summary-path", has_text="/api/v1/internal/access/{user_id}/")
    ).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/readyz/")).to_be_visible()
    assert page.locator(".opblock").count() >= 15
    assert refused == []
