"""A demo public IPv4 pool for `manage.py seed_demo`; idempotent (found by name)."""

# write-ok-file: the demo pool, written once by `manage.py seed_demo`

from compute.network.models import PublicIPPool

# The documentation range (RFC 5737): never routed on the internet, so a demo cannot hand out someone's address.
POOL = ("demo", "203.0.113.0/24", "203.0.113.1")


def seed(*, tenant, stdout) -> None:
    name, cidr, excluded = POOL
    _, created = PublicIPPool.objects.get_or_create(name=name, defaults={"cidr": cidr, "excluded": excluded})
    stdout.write(f"Networking: added the public pool {name} ({cidr})." if created else "Networking: pool in place.")
