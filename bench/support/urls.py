"""Hangar's URLs plus the benchmarks' baselines: a plain DRF ModelViewSet over Instance and a constant JSON view."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import include, path
from rest_framework import pagination, permissions, routers, serializers, viewsets

from compute.models import Instance, InstanceState
from portal.api.authentication import BearerTokenAuthentication
from portal.urls import urlpatterns as hangar_urlpatterns


class PlainInstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = [
            "id",
            "name",
            "state",
            "power_state",
            "flavor",
            "image",
            "resize_flavor",
            "private_ip",
            "ssh_keys",
            "error_reason",
            "created_at",
            "updated_at",
        ]


class PlainPagination(pagination.PageNumberPagination):
    page_size = 20
    page_size_query_param = "per_page"
    max_page_size = 200


class PlainInstanceViewSet(viewsets.ReadOnlyModelViewSet):
    """What DRF gives out of the box: the token's tenant's live instances, newest first."""

    serializer_class = PlainInstanceSerializer
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = PlainPagination
    filter_backends = []

    def get_queryset(self):
        return (
            Instance.objects.filter(tenant_id=self.request.auth.tenant_id)
            .exclude(state=InstanceState.DELETED)
            .order_by("-created_at", "id")
        )


@login_not_required
def constant(request):
    return JsonResponse({"status": "ok", "items": [1, 2, 3]})


router = routers.SimpleRouter()
router.register("instances", PlainInstanceViewSet, basename="plain-instance")

urlpatterns = [
    path("bench/constant/", constant),
    path("bench/plain/", include(router.urls)),
    *hangar_urlpatterns,
]
