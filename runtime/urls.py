"""The runtime's pages (under ``/runtime/``)."""

from django.urls import path

from runtime import views, views_policies, views_policy_log

app_name = "runtime"

urlpatterns = [
    path("activity/", views.activity, name="activity"),
    path("decisions/", views_policy_log.decisions, name="decisions"),
    path("policies/", views_policies.policy_list, name="policies"),
    path("policies/new/", views_policies.policy_new, name="policy-new"),
    path("policies/rollback/", views_policies.policy_rollback, name="policy-rollback"),
    path("policies/<int:pk>/", views_policies.policy_detail, name="policy-detail"),
    path("policies/<int:pk>/tests/", views_policies.policy_tests_run, name="policy-tests-run"),
    path("policies/<int:pk>/shadow/", views_policies.policy_shadow, name="policy-shadow"),
    path("policies/<int:pk>/retire/", views_policies.policy_retire, name="policy-retire"),
    path("policies/<int:pk>/enforce/", views_policies.policy_enforcement_request, name="policy-enforce"),
    path("policies/<int:pk>/replays/", views_policies.policy_replay_start, name="policy-replay-start"),
    path("policies/<int:pk>/replays/<int:rid>/", views_policies.policy_replay, name="policy-replay"),
]
