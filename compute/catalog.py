"""The catalog (flavors, images with their regions, regions) as each process last read it, for the hot paths.

A launch needs a flavor, an image, the image's regions and the default region: four reads of tables that change a
few times a year. Each process keeps them in memory and asks the shared cache for the catalog's version on every use
(one cache round trip, no database query); a save or delete of a flavor, image or region sets a new version, so
every process reads the catalog again at its next use. Without the cache (Redis away) every use reads the database,
as before.

Rows changed behind the ORM's back (a bulk update, SQL) are seen once any catalog row is saved again; an id the
snapshot does not know is read from the database.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction

from compute.models import Flavor, Image, Region

logger = logging.getLogger(__name__)

VERSION_KEY = "compute:catalog:version"


@dataclass(frozen=True)
class Catalog:
    version: str | None
    flavors: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    regions: dict = field(default_factory=dict)  # by name
    # What other layers derive from this version of the catalog (billing's dated flavor prices): dropped with it.
    memo: dict = field(default_factory=dict)

    @property
    def default_region(self) -> Region | None:
        regions = sorted(self.regions.values(), key=lambda region: region.name)
        return next((region for region in regions if region.is_default), None) or next(iter(regions), None)


_lock = threading.Lock()
_current: Catalog | None = None


def _version() -> str | None:
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
            version = cache.get(VERSION_KEY)
    except Exception:
        logger.warning("The cache is unreachable: the catalog is read from the database.", exc_info=True)
        return None
    return version


def _load(version: str | None) -> Catalog:
    images = Image.objects.prefetch_related("regions")
    return Catalog(
        version=version,
        flavors={flavor.pk: flavor for flavor in Flavor.objects.all()},
        images={image.pk: image for image in images},
        regions={region.name: region for region in Region.objects.all()},
    )


def current() -> Catalog:
    """The catalog as of its latest version (read again only when it changed), or the one pinned() for the work
    being done."""
    global _current
    pinned = _pinned.get()
    if pinned is not None and time.monotonic() - pinned[0] <= PINNED_FOR:
        return pinned[1]
    version = _version()
    snapshot = _current
    if version is not None and snapshot is not None and snapshot.version == version:
        return snapshot
    loaded = _load(version)
    if version is not None:
        with _lock:
            _current = loaded
    return loaded


# How long a pinned() check stands: a build that waits for a slow boot checks again for its billing segment.
PINNED_FOR = 0.1  # seconds
_pinned: contextvars.ContextVar[tuple[float, Catalog] | None] = contextvars.ContextVar("catalog_pinned", default=None)


@contextlib.contextmanager
def pinned():
    """One version check for a short piece of work: for up to PINNED_FOR seconds inside the block, current() answers
    the catalog as of its start. A worker's build reads it at its claim and again for its billing segment a few
    milliseconds later; a change committed in between is one the build could as well have started before."""
    token = _pinned.set((time.monotonic(), current()))
    try:
        yield
    finally:
        _pinned.reset(token)


def flavor(pk, *, snapshot: Catalog | None = None) -> Flavor | None:
    found = (snapshot or current()).flavors.get(pk)
    return found if found is not None else Flavor.objects.filter(pk=pk).first()


def image(pk, *, snapshot: Catalog | None = None) -> Image | None:
    found = (snapshot or current()).images.get(pk)
    return found if found is not None else Image.objects.prefetch_related("regions").filter(pk=pk).first()


def region(name: str) -> Region | None:
    found = current().regions.get(name)
    return found if found is not None else Region.objects.filter(name=name).first()


def default_region() -> Region | None:
    return current().default_region or Region.objects.default()


def attach(instance):
    """The instance with its flavor, image and resize flavor set from the catalog (no joins, no queries)."""
    # One version check for all three: each is a cache round trip, and workers attach on every task they run.
    snapshot = current()
    instance.flavor = flavor(instance.flavor_id, snapshot=snapshot)
    instance.image = image(instance.image_id, snapshot=snapshot)
    if instance.resize_flavor_id is not None:
        instance.resize_flavor = flavor(instance.resize_flavor_id, snapshot=snapshot)
    return instance


def changed(*, added: bool = False) -> None:
    """A catalog row changed: every process reads the catalog again (now, and once the change is committed, so a
    process that read it in between does not keep the old rows). A row `added` needs no second time: a snapshot
    without it looks it up in the database."""

    def bump() -> None:
        global _current
        _current = None
        try:
            cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.warning("The cache is unreachable: other processes see the catalog change late.", exc_info=True)

    bump()
    if not added:
        transaction.on_commit(bump)


def _on_change(**kwargs) -> None:
    if kwargs.get("raw"):
        return
    changed(added=bool(kwargs.get("created")))


def subscribe() -> None:
    """Called once from ComputeConfig.ready()."""
    from django.db.models.signals import m2m_changed, post_delete, post_save

    for model in (Flavor, Image, Region):
        post_save.connect(_on_change, sender=model, dispatch_uid=f"catalog.save.{model.__name__}")
        post_delete.connect(_on_change, sender=model, dispatch_uid=f"catalog.delete.{model.__name__}")
    m2m_changed.connect(_on_change, sender=Image.regions.through, dispatch_uid="catalog.image_regions")
