"""``/api/v1/discovery/``: imports, findings and their actions, scope mappings."""

from rest_framework.routers import DefaultRouter

from inventory.discovery.api.views import DiscoveryImportViewSet, FindingViewSet, ScopeMappingViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("discovery/imports", DiscoveryImportViewSet, basename="discovery-import")
router.register("discovery/findings", FindingViewSet, basename="discovery-finding")
router.register("discovery/scope-mappings", ScopeMappingViewSet, basename="discovery-scope-mapping")

urlpatterns = router.urls
