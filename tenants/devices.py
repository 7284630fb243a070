"""A person-readable name for a browser from its User-Agent header ("Firefox on Linux"), for the sessions page and
the new-device e-mail. A short table covers the browsers people use; anything else is named by its first word."""

import re

# Order matters: Edge and Opera also say "Chrome", and Chrome also says "Safari".
_BROWSERS = [
    ("Edge", r"Edg(e|A|iOS)?/"),
    ("Opera", r"OPR/|Opera"),
    ("Firefox", r"Firefox/|FxiOS/"),
    ("Chromium", r"Chromium/"),
    ("Chrome", r"Chrome/|CriOS/"),
    ("Safari", r"Safari/"),
    ("curl", r"^curl/"),
]
_SYSTEMS = [
    ("iPhone", r"iPhone"),
    ("iPad", r"iPad"),
    ("Android", r"Android"),
    ("Windows", r"Windows"),
    ("ChromeOS", r"CrOS"),
    ("macOS", r"Macintosh|Mac OS X"),
    ("Linux", r"Linux|X11"),
]


def describe_user_agent(user_agent: str) -> str:
    user_agent = (user_agent or "").strip()
    if not user_agent:
        return "Unknown browser"
    browser = next((name for name, pattern in _BROWSERS if re.search(pattern, user_agent)), None)
    system = next((name for name, pattern in _SYSTEMS if re.search(pattern, user_agent)), None)
    if browser is None:
        browser = user_agent.split("/", 1)[0].split(" ", 1)[0][:40] or "Unknown browser"
    if "HeadlessChrome" in user_agent:
        browser = "Headless Chrome"
    return f"{browser} on {system}" if system else browser
