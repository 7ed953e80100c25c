"""Fixtures shared by every app's tests."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from accounts.tokens import issue_token


@pytest.fixture
def api_client() -> APIClient:
    """Return an API client with no credentials."""
    return APIClient()


@pytest.fixture
def viewer_client() -> Callable[..., APIClient]:
    """Return a factory of API clients authenticated as a given cinema user."""

    def make(user_id: str, email: str = "") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id=user_id, email=email)}")
        return client

    return make


@pytest.fixture
def service_client() -> APIClient:
    """Return an API client authenticated as an internal cinema service."""
    client = APIClient()
    client.credentials(HTTP_X_SERVICE_KEY="test-service-key")
    return client
