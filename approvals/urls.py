from django.urls import path

from approvals import views

app_name = "approvals"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/bulk-approve/", views.bulk_approve, name="bulk-approve"),
    path("steps/<int:step_id>/decide/", views.step_decide, name="step-decide"),
    path("requests/", views.request_list, name="request-list"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request-withdraw"),
    path("requests/<int:pk>/resubmit/", views.request_resubmit, name="request-resubmit"),
    path("renew/<int:integration_id>/", views.renew, name="renew"),
    path("workflows/", views.workflow_list, name="workflow-list"),
    path("workflows/<int:workflow_id>/steps/new/", views.workflow_step_edit, name="workflow-step-new"),
    path("workflows/<int:workflow_id>/steps/<int:step_id>/", views.workflow_step_edit, name="workflow-step-edit"),
    path(
        "workflows/<int:workflow_id>/steps/<int:step_id>/delete/",
        views.workflow_step_delete,
        name="workflow-step-delete",
    ),
]
