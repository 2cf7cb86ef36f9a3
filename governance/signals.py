"""Hooks the kernel offers to the apps above it, so ``governance`` never imports them.

``user_deactivated`` is sent by ``governance.services.user_deactivate`` inside its transaction;
receivers (inventory: flag the user's integrations orphaned) must do their work through their
own service functions, which audit in the same transaction.
"""

from django.dispatch import Signal

# kwargs: user (the deactivated User), actor (governance.actors.Actor)
user_deactivated = Signal()
