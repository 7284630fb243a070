"""What every page of the browser suite must pass, in one call: `check_page(page, "launch-form")`.

- axe-core (vendored under static/vendor/axe-core/, loaded from the site itself so the Content-Security-Policy
  allows it) finds no serious or critical violation;
- nothing scrolls sideways at a phone's width (390 px);
- the browser logged no error (a refused inline style or script shows up here);
- a screenshot at desktop and at phone width is kept in var/e2e-shots/ (HANGAR_E2E_SHOTS elsewhere), which git
  ignores and CI keeps.

New flows (billing, storage, stacks …) call it on each page state they reach.
"""

import json
import os
import re
from pathlib import Path

AXE_URL = "/static/vendor/axe-core/axe.min.js"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = Path(os.environ.get("HANGAR_E2E_SHOTS", Path(__file__).resolve().parents[2] / "var" / "e2e-shots"))
BLOCKING_IMPACTS = ("serious", "critical")


def shot_name(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA, and best practice)."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(url=AXE_URL)
    results = page.evaluate(
        """async () => {
            const result = await window.axe.run(document, {resultTypes: ["violations"]});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "), summary: n.failureSummary})),
            }));
        }"""
    )
    return [violation for violation in results if violation["impact"] in BLOCKING_IMPACTS]


def sideways_overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scroll)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def widest_elements(page, limit: int = 5) -> list[str]:
    """The elements that stick out to the right of the window, to say what to fix."""
    return page.evaluate(
        """limit => {
            const width = document.documentElement.clientWidth;
            return [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > width + 1)
                .slice(0, limit)
                .map(e => {
                    const classes = typeof e.className === "string" ? e.className.trim().split(/\\s+/) : [];
                    return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + classes.map(c => "." + c).join("") +
                        " (" + Math.round(e.getBoundingClientRect().right) + " px)";
                });
        }""",
        limit,
    )


def page_errors(page) -> list[str]:
    """What the browser logged as errors, and the Content-Security-Policy violations the page's own code caused.

    axe-core sets style attributes while it measures, which the policy refuses: those violations name axe's script
    and are left out (so are the console lines that report them, since the recorder has them all)."""
    recorded = page.evaluate("() => window.__cspViolations || null")
    logged = getattr(page, "console_errors", [])
    if recorded is None:
        return list(logged)
    own = [v for v in recorded if AXE_URL not in v["source"]]
    return [line for line in logged if "Content Security Policy" not in line] + [
        f"CSP refused {v['directive']} ({v['source'] or 'the page'}:{v['line']}) {v['sample']}" for v in own
    ]


def check_page(page, name: str, *, axe: bool = True, phone: bool = True) -> None:
    """Asserts the page passes axe, fits a phone and logged no error; keeps a screenshot at both widths.

    Leaves the page at desktop width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = shot_name(name)
    errors = page_errors(page)
    assert not errors, f"{name}: the browser logged errors: {errors}"
    page.set_viewport_size(DESKTOP)
    if axe:
        violations = axe_violations(page)
        assert not violations, f"{name}: accessibility violations:\n{json.dumps(violations, indent=2)}"
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if phone:
        page.set_viewport_size(PHONE)
        overflow = sideways_overflow(page)
        culprits = widest_elements(page) if overflow > 0 else []
        page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
        page.set_viewport_size(DESKTOP)
        assert overflow <= 0, f"{name}: {overflow} px of sideways scroll at 390 px: {culprits}"


def keep_last_pages(contexts, test_name: str) -> None:
    """Each test of the suite keeps a screenshot of the last page each of its browsers showed, at desktop and
    phone width (var/e2e-shots/last/), whether it passed or not: the first thing to look at when one fails."""
    folder = SHOTS / "last"
    folder.mkdir(parents=True, exist_ok=True)
    for number, context in enumerate(contexts, start=1):
        name = shot_name(test_name) + (f"-{number}" if len(contexts) > 1 else "")
        try:
            for page in context.pages[-1:]:
                for size, suffix in ((DESKTOP, ""), (PHONE, "-390")):
                    page.set_viewport_size(size)
                    page.screenshot(path=str(folder / f"{name}{suffix}.png"), full_page=True, timeout=10_000)
        except Exception:  # a closed, crashed or hanging page: the test's own outcome says more
            continue


def sign_up(page, *, name: str, email: str, organisation: str, password: str = "a-good-long-passphrase") -> None:
    """Signs up through the form (checking the form page itself) and waits for the dashboard."""
    page.goto("/accounts/signup/")
    page.fill("#id_full_name", name)
    page.fill("#id_email", email)
    page.fill("#id_organisation", organisation)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(re.compile(r"/$"))


def add_key_on_launch_form(page, name: str = "laptop") -> None:
    """Adds a new SSH key from the launch form's inline key form and waits until it is selected."""
    from tests.factories.compute import new_public_key

    page.fill("#id_newkey-name", name)
    page.fill("#id_newkey-public_key", new_public_key())
    page.click("[data-key-add]")
    page.wait_for_selector(f"text=The key {name} was added and selected.")


def log_in(page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def badge_text(page, scope: str = "#instance-live .title-row") -> str:
    return page.locator(f"{scope} .badge").first.inner_text().strip()


def wait_for_badge(page, text: str, *, scope: str = "#instance-live .title-row", timeout: float = 60_000) -> None:
    """Waits, without reloading, until the page's own polling shows the state."""
    page.wait_for_function(
        """([scope, text]) => {
            const badge = document.querySelector(scope + " .badge");
            return badge && badge.innerText.trim() === text;
        }""",
        arg=[scope, text],
        timeout=timeout,
    )
