"""Every change to billing state goes through these functions."""


def instance_segment_open(*, instance, at) -> None:
    """Opens the billable segment of an instance that became billable (provisioned) or changed price (resized)."""


def instance_segment_close(*, instance, at) -> None:
    """Closes the open billable segment of an instance (delete requested, or before a resize re-opens it)."""
