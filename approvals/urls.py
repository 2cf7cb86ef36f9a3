from django.urls import path

from approvals import views, views_delegation, views_requests, views_workflows

app_name = "approvals"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/bulk-approve/", views.bulk_approve, name="bulk-approve"),
    path("steps/<int:step_id>/decide/", views_requests.step_decide, name="step-decide"),
    path("requests/", views.request_list, name="request-list"),
    path("requests/<int:pk>/", views_requests.request_detail, name="request-detail"),
    path("requests/<int:pk>/withdraw/", views_requests.request_withdraw, name="request-withdraw"),
    path("requests/<int:pk>/resubmit/", views_requests.request_resubmit, name="request-resubmit"),
    path("renew/<int:integration_id>/", views.renew, name="renew"),
    path("delegations/", views_delegation.delegations, name="delegations"),
    path("delegations/<int:pk>/revoke/", views_delegation.delegation_revoke, name="delegation-revoke"),
    path("assignments/<int:pk>/reassign/", views_delegation.assignment_reassign, name="assignment-reassign"),
    path("workflows/", views_workflows.workflow_list, name="workflow-list"),
    path("workflows/<int:workflow_id>/steps/new/", views_workflows.workflow_step_edit, name="workflow-step-new"),
    path(
        "workflows/<int:workflow_id>/steps/<int:step_id>/",
        views_workflows.workflow_step_edit,
        name="workflow-step-edit",
    ),
    path(
        "workflows/<int:workflow_id>/steps/<int:step_id>/delete/",
        views_workflows.workflow_step_delete,
        name="workflow-step-delete",
    ),
]
