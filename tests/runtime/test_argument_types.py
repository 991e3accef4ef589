"""Arguments are checked against the endpoint's annotations (a 400 before user code runs), never converted."""

from __future__ import annotations

import pytest
from tests.runtime.harness import RunningJob, StartJob

TYPED = """
from __future__ import annotations

import typing
from typing import Any, Dict, List, Optional, Union

CALLS = []


class Point:
    pass


class Typed:
    def perform(self, a: float, b: float = 0) -> float:
        CALLS.append("perform")
        return a + b

    def numbers(self, numbers: List[float], label: Optional[str] = None) -> dict:
        CALLS.append("numbers")
        return {"sum": sum(numbers), "label": label, "types": [type(n).__name__ for n in numbers]}

    def shapes(
        self,
        count: int = 1,
        flag: bool = False,
        mapping: Dict[str, int] | None = None,
        either: Union[int, str] = 0,
        anything: Any = None,
        point: Point = None,
        pair: tuple[int, ...] = (),
        legacy: int = None,
    ) -> dict:
        CALLS.append("shapes")
        return {"count": count, "flag": flag, "mapping": mapping, "either": either, "anything": anything,
                "pair": list(pair), "legacy": legacy}

    def loose(self, *, value, **rest) -> dict:
        CALLS.append("loose")
        return {"value": value, "rest": rest}

    def calls(self) -> list:
        return CALLS

    def auxiliary_endpoints(self):
        return {"/numbers": self.numbers, "/shapes": self.shapes, "/loose": self.loose, "/calls": self.calls}
"""


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> RunningJob:
    from tests.runtime.conftest import _starter

    for start in _starter(tmp_path_factory.mktemp("typed")):
        yield start(TYPED, entrypoint_class="Typed")


def post(job: RunningJob, path: str, body: dict) -> tuple[int, object]:
    response = job.client.post(f"/api/v1{path}", json=body)
    return response.status_code, response.json()


def test_values_reach_the_job_exactly_as_sent(typed: RunningJob) -> None:
    response = typed.client.post("/api/v1/perform", json={"a": 40, "b": 2})
    assert response.text == "42"  # an int annotated float stays an int: 42, not 42.0
    assert post(typed, "/perform", {"a": 0.5, "b": 2}) == (200, 2.5)
    assert post(typed, "/numbers", {"numbers": [40, 2.5]}) == (
        200,
        {"sum": 42.5, "label": None, "types": ["int", "float"]},
    )


def test_a_string_for_a_list_is_400_naming_argument_and_type(typed: RunningJob) -> None:
    status, body = post(typed, "/numbers", {"numbers": "40, 2"})
    assert status == 400
    assert body == {
        "error": "invalid argument 'numbers' for numbers: expected List[float], got string \"40, 2\"",
        "type": "InvalidInput",
    }


def test_a_wrong_item_in_a_list_is_400_naming_its_index(typed: RunningJob) -> None:
    status, body = post(typed, "/numbers", {"numbers": [1, "two", 3]})
    assert status == 400
    assert body["error"] == (
        "invalid argument 'numbers' for numbers: expected List[float], but numbers[1] is string \"two\""
    )


@pytest.mark.parametrize(
    ("body", "argument", "expected"),
    [
        ({"a": "40"}, "a", "float"),
        ({"a": True}, "a", "float"),
        ({"a": None}, "a", "float"),
        ({"a": [1]}, "a", "float"),
    ],
)
def test_scalars_of_the_wrong_json_type_are_400(typed: RunningJob, body: dict, argument: str, expected: str) -> None:
    status, answer = post(typed, "/perform", body)
    assert status == 400
    assert f"invalid argument {argument!r} for perform: expected {expected}, got " in answer["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"count": 1.5}, "'count' for shapes: expected int, got number 1.5"),
        ({"count": "3"}, "'count' for shapes: expected int"),
        ({"flag": 1}, "'flag' for shapes: expected bool, got integer 1"),
        ({"mapping": {"a": "x"}}, "'mapping' for shapes: expected Dict[str, int] | None, but mapping[\"a\"] is string"),
        ({"mapping": [1]}, "'mapping' for shapes: expected Dict[str, int] | None, got array [1]"),
        ({"either": 1.5}, "'either' for shapes: expected Union[int, str], got number 1.5"),
        ({"pair": [1, "x"]}, "'pair' for shapes: expected tuple[int, ...], but pair[1] is string"),
        ({"legacy": "x"}, "'legacy' for shapes: expected int, got string"),
    ],
)
def test_containers_unions_and_optionals_are_checked(typed: RunningJob, body: dict, problem: str) -> None:
    status, answer = post(typed, "/shapes", body)
    assert status == 400, answer
    assert problem in answer["error"]


def test_values_that_fit_pass_including_none_defaults_and_unchecked_annotations(typed: RunningJob) -> None:
    body = {
        "count": 3,
        "flag": True,
        "mapping": None,
        "either": "text",
        "anything": {"deep": [1, "x"]},
        "point": "not checked: a class of the job's own",
        "pair": [1, 2],
        "legacy": None,
    }
    status, answer = post(typed, "/shapes", body)
    assert status == 200, answer
    assert answer == {
        "count": 3,
        "flag": True,
        "mapping": None,
        "either": "text",
        "anything": {"deep": [1, "x"]},
        "pair": [1, 2],
        "legacy": None,
    }


def test_missing_and_unknown_arguments_are_400_naming_them_and_the_type(typed: RunningJob) -> None:
    status, missing = post(typed, "/perform", {"b": 2})
    assert status == 400
    assert missing["error"] == "invalid arguments for perform: missing required argument 'a' (float)"
    status, unknown = post(typed, "/perform", {"a": 1, "c": 2, "d": 3})
    assert status == 400
    assert unknown["error"] == "invalid arguments for perform: unexpected arguments 'c', 'd' (perform takes: a, b)"


def test_keyword_only_and_var_keyword_parameters_are_respected(typed: RunningJob) -> None:
    assert post(typed, "/loose", {"value": 1, "other": "x"}) == (200, {"value": 1, "rest": {"other": "x"}})
    status, answer = post(typed, "/loose", {"other": "x"})
    assert status == 400
    assert answer["error"] == "invalid arguments for loose: missing required argument 'value' (any type)"


def test_rejected_calls_never_reach_user_code(typed: RunningJob) -> None:
    before = typed.client.post("/api/v1/calls", json={}).json()
    for path, body in [("/numbers", {"numbers": "x"}), ("/perform", {"a": "1"}), ("/perform", {"z": 1})]:
        assert typed.client.post(f"/api/v1{path}", json=body).status_code == 400
    after = typed.client.post("/api/v1/calls", json={}).json()
    assert after == before


def test_unresolvable_annotations_are_not_checked(start_job: StartJob) -> None:
    job = start_job(
        """
from __future__ import annotations


class Job:
    def perform(self, frame: pandas.DataFrame, n: int) -> str:
        return type(frame).__name__
""",
    )
    assert job.client.post("/api/v1/perform", json={"frame": [1, 2], "n": 1}).json() == "list"
    wrong = job.client.post("/api/v1/perform", json={"frame": [1, 2], "n": "1"})
    assert wrong.status_code == 400 and "'n'" in wrong.json()["error"]
