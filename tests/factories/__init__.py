"""factory-boy factories, one module per app.

FACTORIES maps every model to its factory: the generic isolation tests build one object of each model that a URL
names through it, so an app that adds a model with a URL must add its factory to its module's FACTORIES.
"""

from tests.factories import api, billing, compute, monitoring, network, stacks, tenants
from tests.factories.tenants import (
    InvitationFactory,
    MembershipFactory,
    QuotaFactory,
    TenantFactory,
    UserFactory,
)

FACTORIES = {
    **tenants.FACTORIES,
    **api.FACTORIES,
    **compute.FACTORIES,
    **network.FACTORIES,
    **monitoring.FACTORIES,
    **stacks.FACTORIES,
    **billing.FACTORIES,
}

__all__ = ["FACTORIES", "InvitationFactory", "MembershipFactory", "QuotaFactory", "TenantFactory", "UserFactory"]
