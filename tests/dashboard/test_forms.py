"""Form errors go next to the field the API's message names."""

from __future__ import annotations

from trackside.dashboard.web import field_errors


def test_an_error_naming_a_field_is_placed_by_that_field() -> None:
    fields = ["username", "password"]
    assert field_errors("password: too short; use at least 8 characters", fields) == {
        "password": "password: too short; use at least 8 characters"
    }
    assert field_errors("invalid request: username: String should have at most 150 characters", fields) == {
        "username": "invalid request: username: String should have at most 150 characters"
    }


def test_an_error_about_no_field_belongs_to_the_whole_form_unless_the_form_has_one_field() -> None:
    message = "Trackside is in maintenance mode: deploying is disabled"
    assert field_errors(message, ["manifest", "build_context"]) == {"": message}
    assert field_errors(message, ["infrastructure_target"]) == {"infrastructure_target": message}


def test_portfolio_filter_errors_name_their_column() -> None:
    message = "filter_version: invalid regular expression '('"
    assert field_errors(message, ["filter_name", "filter_version"]) == {"filter_version": message}
