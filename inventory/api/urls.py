from rest_framework.routers import DefaultRouter

from inventory.api.views import (
    GrantViewSet,
    IntegrationViewSet,
    OwnershipTransferViewSet,
    ScopeViewSet,
    TrustedIssuerViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("scopes", ScopeViewSet, basename="scope")
router.register("integrations", IntegrationViewSet, basename="integration")
router.register("ownership-transfers", OwnershipTransferViewSet, basename="ownership-transfer")
router.register("grants", GrantViewSet, basename="grant")
router.register("trusted-issuers", TrustedIssuerViewSet, basename="trusted-issuer")

urlpatterns = router.urls
