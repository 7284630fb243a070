import pytest


@pytest.fixture(autouse=True)
def _billing_settings(settings, tmp_path):
    # Rendered invoices go to a private folder; e-mails are kept for assertions.
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
