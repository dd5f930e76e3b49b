"""The root-cause language model is the operator's URL: reached even when tenants' internal
targets are refused, pinned to the address resolved once, its answer read capped. Names
resolve through the table in tests/core/names.py (why: see there). No database."""

from __future__ import annotations

import json

from apps.healing import rootcause


def test_the_model_on_an_internal_name_is_asked_and_pinned(names, pin_pair, settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    settings.ROOT_CAUSE_LLM_URL = f"http://models.internal:{pin_pair.port}"
    names.set("models.internal", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/api/generate", body=json.dumps({"response": "The database."}))

    assert rootcause.llm_summary("why?") == ("The database.", "")

    assert pin_pair.decoy.accepted == 0
    assert names.asked["models.internal"] == 1


def test_an_oversized_answer_is_not_read_whole(names, pin_pair, settings):
    settings.ROOT_CAUSE_LLM_URL = f"http://models.internal:{pin_pair.port}"
    names.set("models.internal", "127.0.0.1")
    padding = "x" * (rootcause.LLM_ANSWER_LIMIT + 10)
    pin_pair.checked.route("/api/generate", body=json.dumps({"response": padding}))

    text, error = rootcause.llm_summary("why?")

    assert text == ""
    assert error == "language model unavailable: JSONDecodeError"


def test_a_redirect_from_the_model_is_not_followed(names, pin_pair, settings):
    settings.ROOT_CAUSE_LLM_URL = f"http://models.internal:{pin_pair.port}"
    names.set("models.internal", "127.0.0.1")
    pin_pair.checked.route("/api/generate", redirect_to=f"http://127.0.0.1:{pin_pair.port}/else")

    assert rootcause.llm_summary("why?") == ("", "language model answered a redirect (302)")

    assert pin_pair.checked.hits["/else"] == 0
