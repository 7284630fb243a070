"""Stacks in Chromium against the whole stack (web, a separate worker and beat): the example document is planned
with its cost, applied and watched until its machines run, shown with its resources, and destroyed. Every page
state is checked by `check_page` (axe-core, no sideways scroll at 390 px, no browser errors)."""

import re

import pytest

from tests.e2e.pages import check_page, sign_up, wait_for_badge
from tests.e2e.test_dashboard_flows import _confirm_email, _email

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

RUN_BADGE = "#run-progress .title-row"


def test_plan_apply_watch_and_destroy_a_stack(stack, stack_page):
    page = stack_page()
    email = _email("sam")
    sign_up(page, name="Sam Stack", email=email, organisation="Stack Works")
    _confirm_email(page, stack, email)

    page.goto("/stacks/")
    assert page.get_by_role("heading", name="No stacks yet").is_visible()
    check_page(page, "stacks-empty")

    # The form comes with an example document: plan it as it is.
    assert "stack: shop" in page.input_value("#id_document")
    page.get_by_role("button", name="Plan", exact=True).click()
    page.wait_for_url(re.compile(r"/stacks/plans/[0-9a-f-]{36}/$"))
    plan = page.inner_text("main")
    assert "web-1" in plan and "web-2" in plan and "backend" in plan
    assert re.search(r"Difference\s+\+\d+\.\d\d\s+EUR a month", plan, re.IGNORECASE), (
        "the plan shows what the change costs"
    )
    assert re.search(r"\+\d+\.\d\d EUR", plan), "each change shows its share of the bill"
    check_page(page, "stack-plan")

    page.get_by_role("button", name="Apply this plan").click()
    page.wait_for_url(re.compile(r"/stacks/runs/[0-9a-f-]{36}/$"))
    wait_for_badge(page, "Succeeded", scope=RUN_BADGE, timeout=150_000)
    check_page(page, "stack-run")

    page.goto("/stacks/shop/")
    resources = page.inner_text("main")
    assert "web-1" in resources and "web-2" in resources
    check_page(page, "stack-detail")
    page.goto("/stacks/")
    assert page.get_by_role("link", name="shop").is_visible()
    check_page(page, "stacks")

    page.goto("/stacks/shop/destroy/")
    check_page(page, "stack-destroy")
    page.fill("#id_confirm", "shop")
    page.get_by_role("button", name="Destroy the stack").click()
    page.wait_for_url(re.compile(r"/stacks/runs/[0-9a-f-]{36}/$"))
    wait_for_badge(page, "Succeeded", scope=RUN_BADGE, timeout=150_000)
    page.goto("/instances/")
    page.wait_for_selector("text=No instances yet")
