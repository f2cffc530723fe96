"""The sandbox's route table and gitlab_api.yaml agree: every documented request reaches its own row."""

from __future__ import annotations

import pytest

from include.sandbox import api_table
from include.sandbox import gitlab_routes as routes

# Rows answered by a route whose check is another endpoint's or none at all, and why.
ROUTED_ELSEWHERE = {
    "version": None,  # any authenticated user
    "current_user": None,  # any authenticated user
    "token_self": None,  # the token itself
    "trigger_pipeline": None,  # the trigger token in the request authenticates
    "pipeline_variables": "get_pipeline",  # reading the pipeline, then may_read_variables in the handler
}


@pytest.mark.parametrize("row", api_table.endpoints(), ids=lambda row: row["id"])
def test_every_documented_request_reaches_its_route(row):
    method, pattern = row["request"].split(" ", 1)
    path = ["1" if part.startswith(":") else part for part in pattern.strip("/").split("/")]
    found = routes.match(method, path)
    assert found is not None, row["request"]
    assert found[0].endpoint == ROUTED_ELSEWHERE.get(row["id"], row["id"])


def test_every_route_names_a_documented_endpoint_and_a_handler():
    from include.sandbox.gitlab_server import _Handler as handler_class

    for route in routes.ROUTES:
        if route.endpoint is not None:
            api_table.endpoint(route.endpoint)  # raises naming a missing row
        assert callable(getattr(handler_class, route.handler, None)), route


def test_patterns_take_one_segment_per_name_and_the_rest_for_a_star():
    assert routes.match("GET", ["projects", "7", "deployments"])[0].endpoint == "list_deployments"
    route, params, rest = routes.match("PUT", ["projects", "7", "deployments", "3"])
    assert (route.endpoint, params, rest) == ("update_deployment", {"id": "7"}, ["3"])
    assert routes.match("DELETE", ["version"]) is None
    assert routes.match("GET", ["projects"]) is None
