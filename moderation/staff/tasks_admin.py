"""django-q2's models in admin, read-only: the desk's schedules live in code and migrations.

django-q's own Schedule admin lets a superuser schedule any importable function (`os.system`, with
arguments of their choosing) to run in the worker, and leaves no audit entry. Admin now shows the
schedules, the queue and the task results, and changes none of them: no schedule is added or
edited, no queued task edited or dropped, and no task resubmitted (that reruns it with no audit
entry either). A schedule changes through a migration, reviewed like any code.
"""

from __future__ import annotations

import django_q.admin as q_admin  # registers django-q's admins, which are replaced below
from django.contrib import admin
from django_q.models import Failure, OrmQ, Schedule, Success

from reports.admin import ReadOnlyAdmin


class ScheduleAdmin(ReadOnlyAdmin, q_admin.ScheduleAdmin):
    pass


class SuccessAdmin(ReadOnlyAdmin, q_admin.TaskAdmin):
    actions = ()


class FailureAdmin(ReadOnlyAdmin, q_admin.FailAdmin):
    actions = ()


class QueueAdmin(ReadOnlyAdmin, q_admin.QueueAdmin):
    pass


# django-q registers the queue only for its ORM broker; each admin it registered is replaced.
for model, model_admin in (
    (Schedule, ScheduleAdmin),
    (Success, SuccessAdmin),
    (Failure, FailureAdmin),
    (OrmQ, QueueAdmin),
):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, model_admin)
