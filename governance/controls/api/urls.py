"""``/api/v1/controls/`` and ``/api/v1/frameworks/``: the control catalog, read only."""

from rest_framework.routers import SimpleRouter

from governance.controls.api.views import ControlViewSet, FrameworkViewSet

router = SimpleRouter(trailing_slash=True)
router.register("controls", ControlViewSet, basename="catalog-control")
router.register("frameworks", FrameworkViewSet, basename="catalog-framework")

urlpatterns = router.urls
