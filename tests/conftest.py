import pytest
from django.conf import settings as django_settings
from django.test import Client

from portal.celery import app as celery_app
from tenants.roles import Role
from tests.factories import MembershipFactory, TenantFactory

pytest_plugins = ["tests.browser"]


# Under `make test` the suite is spread over several processes (pytest-xdist, --dist loadgroup). Tests that use one
# of these fixtures share something that is either not shareable between processes (the libvirt daemon's storage
# pool and networks, the fault suite's own servers) or slow to start once per process (the browser suite's whole
# stack, the command-line tests' own), so each such set runs in one process.
SHARED_FIXTURES = {
    "demo_image": "real-guests",
    "stack": "browser-stack",
    "cli_stack": "cli-stack",
    "fault": "fault-servers",
}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` need row locks and real concurrency: they run only when the database is PostgreSQL."""
    if django_settings.DATABASE_IS_SQLITE:
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgres://…)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)
    for item in items:
        for fixture, group in SHARED_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                break


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # Plain HTTP test client; static files straight from the source folders.
    settings.SECURE_SSL_REDIRECT = False
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.AXES_ENABLED = True
    # Hashing is deliberately slow in production; tests only need it to be correct.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run inline when their transaction commits; tests that need a real worker start one themselves."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def tenant(db):
    return TenantFactory()


def _member(tenant, role):
    return MembershipFactory(tenant=tenant, role=role).user


@pytest.fixture
def owner(tenant):
    return _member(tenant, Role.OWNER)


@pytest.fixture
def admin_user(tenant):
    return _member(tenant, Role.ADMIN)


@pytest.fixture
def member(tenant):
    return _member(tenant, Role.MEMBER)


@pytest.fixture
def billing_user(tenant):
    return _member(tenant, Role.BILLING)


@pytest.fixture
def viewer(tenant):
    return _member(tenant, Role.VIEWER)


@pytest.fixture
def outsider(db):
    """The owner of another organisation: sees nothing of `tenant`."""
    return MembershipFactory(role=Role.OWNER).user


def login_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_client(owner):
    return login_client(owner)


@pytest.fixture
def member_client(member):
    return login_client(member)


@pytest.fixture
def viewer_client(viewer):
    return login_client(viewer)


@pytest.fixture
def outsider_client(outsider):
    return login_client(outsider)
