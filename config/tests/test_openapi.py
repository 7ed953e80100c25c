"""Every API operation is described for the frontend and other services, with examples."""

import pytest


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_every_operation_has_a_summary_and_a_success_example(schema):
    undocumented = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            success = operation["responses"].get("200") or operation["responses"].get("201")
            examples = (success or {}).get("content", {}).get("application/json", {}).get("examples")
            if not operation.get("summary") or not examples:
                undocumented.append(f"{method.upper()} {path}")
    assert undocumented == []


def test_viewer_operations_document_the_error_shape(schema):
    errors = schema["components"]["schemas"]["Error"]
    assert errors["properties"]["error"]["$ref"].endswith("ErrorBody")
    access = schema["paths"]["/api/v1/access/"]["get"]["responses"]
    assert access["401"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_security_schemes_describe_bearer_and_service_key(schema):
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}.items() <= schemes["ViewerJWT"].items()
    assert schemes["ServiceKey"] == {"type": "apiKey", "in": "header", "name": "X-Service-Key"}
