"""plan, apply, destroy, export: the plan with its cost difference, the prompt, progress and the run's outcome."""

import httpx
from fakeapi import error, page

from hangar_cli.errors import FAILED, REFUSED, USAGE

DOCUMENT = "stack: shop\nmachines:\n  web:\n    flavor: c1.small\n    image: Debian 12\n"
PLAN = {
    "id": "plan-1",
    "stack": "shop",
    "created_at": "2026-11-26T17:00:00Z",
    "changes": [
        {
            "action": "update",
            "type": "machine",
            "name": "web",
            "reason": "",
            "fields": {"flavor": ["c1.micro", "c1.small"]},
            "monthly_difference": "3.40",
        },
        {"action": "create", "type": "volume", "name": "data", "reason": "", "fields": {"size_gib": [None, 10]}},
        {
            "action": "replace",
            "type": "network",
            "name": "back",
            "reason": "the CIDR cannot change in place",
            "fields": {},
        },
    ],
    "quota": {"ok": True, "problems": []},
    "cost": {"currency": "EUR", "monthly_before": "4.50", "monthly_after": "8.90", "difference": "4.40"},
    "no_changes": False,
}
RUN = {
    "id": "run-1",
    "stack": "shop",
    "kind": "apply",
    "state": "running",
    "done": 1,
    "total": 3,
    "error": "",
    "steps": [{"action": "update", "type": "machine", "name": "web", "state": "succeeded", "error": ""}],
}


def stack_file(tmp_path, text=DOCUMENT):
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return str(path)


def test_plan_shows_each_change_and_the_cost_difference(api, hangar, tmp_path):
    api.on("POST", "stacks/plans/", PLAN)
    result = hangar("plan", "-f", stack_file(tmp_path))
    assert result.exit_code == 0, result.stderr
    assert api.sent("POST", "stacks/plans/") == [{"document": DOCUMENT}]
    assert "flavor: c1.micro → c1.small" in result.stdout
    assert "size_gib: — → 10" in result.stdout
    assert "the CIDR cannot change in place" in result.stdout
    assert "1 to create, 1 to update, 1 to replace, 0 to delete" in result.stdout
    assert "Monthly cost: 4.50 → 8.90 EUR (+4.40 EUR a month)" in result.stdout
    assert "+3.40" in result.stdout  # the change's own share
    assert hangar("plan", "-f", stack_file(tmp_path), "--json").json() == PLAN


def test_an_invalid_document_names_the_field_and_line(api, hangar, tmp_path):
    api.on(
        "POST",
        "stacks/plans/",
        error(
            400,
            "invalid_document",
            "The stack document is not valid.",
            [
                {"field": "machines.web.flavor", "line": 4, "message": "No flavor named 'c9.huge'."},
                {"field": "machines.web.colour", "line": 6, "message": "Unknown key."},
            ],
        ),
    )
    result = hangar("plan", "-f", stack_file(tmp_path))
    assert result.exit_code == REFUSED
    assert "  machines.web.flavor (line 4): No flavor named 'c9.huge'." in result.stderr
    assert "  machines.web.colour (line 6): Unknown key." in result.stderr


def test_yaml_that_does_not_parse_is_a_usage_error_with_its_line(api, hangar, tmp_path):
    result = hangar("plan", "-f", stack_file(tmp_path, "stack: shop\nmachines: [\n"))
    assert result.exit_code == USAGE
    assert "is not valid YAML at line 3" in result.stderr
    assert not api.sent("POST", "stacks/plans/")
    assert hangar("plan", "-f", str(tmp_path / "missing.yaml")).exit_code == USAGE


def test_apply_asks_without_yes_and_applies_nothing(api, hangar, tmp_path):
    api.on("POST", "stacks/plans/", PLAN)
    result = hangar("apply", "-f", stack_file(tmp_path))
    assert result.exit_code == USAGE and "--yes" in result.stderr
    assert not api.sent("POST", "stacks/plans/plan-1/apply/")


def test_apply_follows_the_run_to_the_end(api, hangar, tmp_path):
    api.on("POST", "stacks/plans/", PLAN)
    api.on(
        "POST",
        "stacks/plans/plan-1/apply/",
        httpx.Response(
            202,
            json={**RUN, "state": "pending", "done": 0, "steps": []},
            headers={"Location": "http://hangar.test/api/v1/stacks/runs/run-1/"},
        ),
    )
    finished = {
        **RUN,
        "state": "succeeded",
        "done": 3,
        "steps": [
            *RUN["steps"],
            {"action": "create", "type": "volume", "name": "data", "state": "succeeded", "error": ""},
            {"action": "replace", "type": "network", "name": "back", "state": "succeeded", "error": ""},
        ],
    }
    api.on("GET", "stacks/runs/run-1/", [RUN, finished])
    result = hangar("apply", "-f", stack_file(tmp_path), "--yes")
    assert result.exit_code == 0, result.stderr
    assert "✓ create volume data" in result.stderr
    assert "apply shop: succeeded (3 of 3 steps)" in result.stderr
    assert len(api.sent("GET", "stacks/runs/run-1/")) == 2


def test_apply_of_an_unchanged_document_does_nothing(api, hangar, tmp_path):
    api.on(
        "POST",
        "stacks/plans/",
        {
            **PLAN,
            "changes": [],
            "no_changes": True,
            "cost": {**PLAN["cost"], "monthly_before": "8.90", "difference": "0.00"},
        },
    )
    result = hangar("apply", "-f", stack_file(tmp_path))
    assert result.exit_code == 0
    assert "No changes" in result.stdout
    assert not api.sent("POST", "stacks/plans/plan-1/apply/")


def test_a_failed_run_is_code_7_with_the_failed_step(api, hangar, tmp_path):
    api.on("POST", "stacks/plans/", PLAN)
    api.on(
        "POST",
        "stacks/plans/plan-1/apply/",
        httpx.Response(202, json=RUN, headers={"Location": "/api/v1/stacks/runs/run-1/"}),
    )
    api.on(
        "GET",
        "stacks/runs/run-1/",
        {
            **RUN,
            "state": "failed",
            "error": "1 step failed",
            "steps": [
                {"action": "create", "type": "volume", "name": "data", "state": "failed", "error": "Quota: 10 GB left."}
            ],
        },
    )
    result = hangar("apply", "-f", stack_file(tmp_path), "--yes")
    assert result.exit_code == FAILED
    assert "volume.data: Quota: 10 GB left." in result.stderr
    assert "applying converges" in result.stderr


def test_a_stale_plan_says_to_plan_again(api, hangar, tmp_path):
    api.on("POST", "stacks/plans/", PLAN)
    api.on("POST", "stacks/plans/plan-1/apply/", error(409, "plan_stale", "The resources changed since the plan."))
    result = hangar("apply", "-f", stack_file(tmp_path), "--yes")
    assert result.exit_code == REFUSED
    assert "fresh plan" in result.stderr


def test_over_quota_plans_are_not_applied(api, hangar, tmp_path):
    api.on("POST", "stacks/plans/", {**PLAN, "quota": {"ok": False, "problems": ["12 instances of 10 allowed."]}})
    result = hangar("apply", "-f", stack_file(tmp_path), "--yes")
    assert result.exit_code == REFUSED
    assert "12 instances of 10 allowed." in result.stdout + result.stderr
    assert not api.sent("POST", "stacks/plans/plan-1/apply/")


def test_destroy_shows_the_stack_and_follows_the_run(api, hangar):
    api.on(
        "GET",
        "stacks/shop/",
        {
            "name": "shop",
            "resource_count": 1,
            "resources": [
                {"type": "machine", "key": "web", "id": "x", "name": "web", "detail": "c1.small", "monthly_cost": "9"}
            ],
            "monthly_cost": "8.90",
            "currency": "EUR",
            "last_run": {"kind": "apply", "state": "succeeded"},
        },
    )
    api.on(
        "DELETE",
        "stacks/shop/",
        httpx.Response(
            202, json={**RUN, "kind": "destroy", "state": "pending"}, headers={"Location": "/api/v1/stacks/runs/run-2/"}
        ),
    )
    api.on("GET", "stacks/runs/run-2/", {**RUN, "kind": "destroy", "state": "succeeded", "done": 3, "steps": []})
    result = hangar("destroy", "shop", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "8.90 EUR" in result.stdout and "c1.small" in result.stdout
    assert "destroy shop: succeeded" in result.stderr


def test_export_by_name_or_label(api, hangar, tmp_path):
    api.on("GET", "stacks/shop/export/", {"document": DOCUMENT})
    api.on("GET", "stacks/export/", {"document": "stack: adopted\n"})
    assert hangar("export", "shop").stdout == DOCUMENT
    out = tmp_path / "adopted.yaml"
    exported = hangar("export", "--label", "team=web", "--label", "tier", "--stack", "adopted", "-o", str(out))
    assert exported.exit_code == 0
    assert out.read_text() == "stack: adopted\n"
    assert api.requests[-1].url.params.get_list("label") == ["team=web", "tier"]
    assert api.requests[-1].url.params["stack"] == "adopted"
    assert hangar("export", "--unstacked").exit_code == 0
    assert "label" not in api.requests[-1].url.params
    assert hangar("export").exit_code == USAGE
    assert hangar("export", "--unstacked", "--label", "a=b").exit_code == USAGE
    assert hangar("export", "shop", "--label", "a=b").exit_code == USAGE


def test_stacks_list(api, hangar):
    summary = {
        "name": "shop",
        "resources": 3,
        "monthly_cost": "8.90",
        "currency": "EUR",
        "last_run": {"kind": "apply", "state": "succeeded"},
    }
    api.on("GET", "stacks/", page([summary]))
    result = hangar("stacks", "list")
    assert result.exit_code == 0
    assert "shop" in result.stdout and "8.90 EUR" in result.stdout and "apply succeeded" in result.stdout
