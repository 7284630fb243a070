"""Every change to tenants, memberships and invitations goes through these functions."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.errors import Conflict, Forbidden, InvalidRequest
from tenants.lifecycle import announce_created
from tenants.models import Invitation, Membership, Quota, Tenant, TenantEvent
from tenants.roles import GRANTABLE_ROLES, Permission, Role
from tenants.services.accounts import email_verification_send, user_check_verified, user_mark_email_verified
from tenants.services.events import tenant_event

User = get_user_model()


def tenant_create(*, name: str, owner) -> Tenant:
    """A new organisation with its default quota and `owner` as its first owner."""
    with transaction.atomic():
        tenant = Tenant.objects.create(name=name.strip())
        Quota.objects.create(tenant=tenant, **Quota.defaults())
        Membership.objects.create(user=owner, tenant=tenant, role=Role.OWNER)
        announce_created(tenant=tenant, actor=owner)
    return tenant


def user_sign_up(*, email: str, password: str, full_name: str, organisation: str):
    """Creates the user and their own tenant, in which they are the owner, and e-mails the verification link."""
    with transaction.atomic():
        user = User.objects.create_user(email=email, password=password, full_name=full_name.strip())
        tenant_create(name=organisation or f"{full_name or email}'s organisation", owner=user)
        email_verification_send(user=user)
    return user


def tenant_rename(*, tenant: Tenant, name: str, actor_membership: Membership) -> Tenant:
    if actor_membership.tenant_id != tenant.pk or not actor_membership.has(Permission.MANAGE_TENANT):
        raise Forbidden("Only owners can rename the organisation.")
    old_name, tenant.name = tenant.name, name.strip()
    if tenant.name == old_name:
        return tenant
    with transaction.atomic():
        tenant.save(update_fields=["name"])
        tenant_event(
            tenant=tenant,
            action=TenantEvent.Action.RENAME,
            actor=actor_membership.user,
            message=f"Renamed from “{old_name}” to “{tenant.name}”.",
        )
    return tenant


def _role_label(role: str) -> str:
    return Role(role).label.lower()


def _check_can_grant(actor_membership: Membership, role: str) -> None:
    if role not in Role.values:
        raise InvalidRequest(f"{role!r} is not a role.", code="invalid_role")
    if role not in GRANTABLE_ROLES.get(actor_membership.role, ()):
        raise Forbidden(f"A {actor_membership.get_role_display().lower()} cannot grant the {role} role.")


def invitation_create(*, tenant: Tenant, invited_by_membership: Membership, email: str, role: str) -> Invitation:
    """Records an invitation and e-mails its single-use link; the token itself is never stored."""
    if not invited_by_membership.has(Permission.MANAGE_MEMBERS):
        raise Forbidden("Only owners and admins can invite people.")
    user_check_verified(user=invited_by_membership.user, verb="invite people")
    _check_can_grant(invited_by_membership, role)
    email = User.objects.normalize_email(email).lower()
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of {tenant}.", code="already_member")
    token, token_hash = Invitation.new_token()
    with transaction.atomic():
        # An expired invitation to the same address no longer blocks a new one.
        Invitation.objects.filter(
            tenant=tenant,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__lte=timezone.now(),
        ).update(revoked_at=timezone.now())
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    tenant=tenant,
                    email=email,
                    role=role,
                    token_hash=token_hash,
                    invited_by=invited_by_membership.user,
                    expires_at=timezone.now() + settings.INVITATION_TTL,
                )
        except IntegrityError:
            raise Conflict(f"{email} already has an open invitation to {tenant}.", code="already_invited") from None
        tenant_event(
            tenant=tenant,
            action=TenantEvent.Action.INVITE,
            actor=invited_by_membership.user,
            message=f"Invited {email} as {_role_label(role)}.",
            resource_id=invitation.pk,
            resource_name=email,
        )
        link = settings.SITE_URL + reverse("invitation-accept", args=[token])
        context = {"invitation": invitation, "link": link, "inviter": invited_by_membership.user}
        transaction.on_commit(
            lambda: send_mail(
                subject=f"You are invited to join {tenant.name} on Hangar",
                message=render_to_string("tenants/email/invitation.txt", context),
                from_email=None,
                recipient_list=[email],
            )
        )
    return invitation


def invitation_find(*, token: str) -> Invitation | None:
    return (
        Invitation.objects.select_related("tenant", "invited_by")
        .filter(token_hash=Invitation.hash_token(token))
        .first()
    )


def _lock_open_invitation(token: str) -> Invitation:
    """The open invitation behind `token`, locked until the transaction ends so it is used only once."""
    invitation = Invitation.objects.select_for_update().filter(token_hash=Invitation.hash_token(token)).first()
    if invitation is None:
        raise InvalidRequest("This invitation link is not valid.", code="invitation_invalid")
    if invitation.accepted_at or invitation.revoked_at:
        raise Conflict("This invitation has already been used or was withdrawn.", code="invitation_used")
    if invitation.is_expired:
        raise Conflict("This invitation has expired; ask for a new one.", code="invitation_expired")
    return invitation


def _join(invitation: Invitation, user) -> Membership:
    if Membership.objects.filter(tenant=invitation.tenant, user=user).exists():
        raise Conflict(f"You are already a member of {invitation.tenant}.", code="already_member")
    membership = Membership.objects.create(user=user, tenant=invitation.tenant, role=invitation.role)
    # The invitation reached this address: that proves it as well as the sign-up link would.
    user_mark_email_verified(user=user)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    tenant_event(
        tenant=invitation.tenant,
        action=TenantEvent.Action.INVITE_ACCEPT,
        actor=user,
        message=f"{user.email} accepted the invitation and joined as {_role_label(invitation.role)}.",
        resource_id=membership.pk,
        resource_name=user.email,
    )
    return membership


def invitation_accept(*, token: str, user) -> Membership:
    """Adds `user` to the invitation's tenant with its role; the invitation cannot be used again.

    Only the account with the invited address may accept: whoever else holds the link is refused.
    """
    with transaction.atomic():
        invitation = _lock_open_invitation(token)
        if not invitation.is_addressed_to(user):
            raise Forbidden(
                f"This invitation was sent to {invitation.email}; you are signed in as {user.email}. "
                f"Sign out and sign in or sign up as {invitation.email} to accept it.",
                code="invitation_wrong_account",
            )
        return _join(invitation, user)


def user_sign_up_invited(*, token: str, full_name: str, password: str) -> Membership:
    """Creates the invited person's account, with the invited address, and their membership from the invitation.

    Nothing else: someone who signs up to join an organisation gets no empty organisation of their own.
    """
    with transaction.atomic():
        invitation = _lock_open_invitation(token)
        exists = Conflict(
            f"An account with {invitation.email} already exists; log in to accept the invitation.",
            code="account_exists",
        )
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise exists
        try:
            with transaction.atomic():
                user = User.objects.create_user(email=invitation.email, password=password, full_name=full_name.strip())
        except IntegrityError:
            raise exists from None
        return _join(invitation, user)


def invitation_revoke(*, invitation: Invitation, actor_membership: Membership) -> None:
    if not actor_membership.has(Permission.MANAGE_MEMBERS):
        raise Forbidden("Only owners and admins can withdraw invitations.")
    with transaction.atomic():
        # Locked, so two admins withdrawing at once cannot both log it; nor can it be accepted meanwhile.
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.accepted_at or invitation.revoked_at:
            raise Conflict("This invitation is no longer open.", code="invitation_used")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        tenant_event(
            tenant=invitation.tenant,
            action=TenantEvent.Action.INVITE_REVOKE,
            actor=actor_membership.user,
            message=f"Withdrew the invitation to {invitation.email} ({_role_label(invitation.role)}).",
            resource_id=invitation.pk,
            resource_name=invitation.email,
        )


def _lock_memberships(tenant: Tenant) -> None:
    # Serialises role changes within one tenant so two owners cannot demote each other at the same time.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()


def _check_manages(actor: Membership, target: Membership) -> None:
    if actor.tenant_id != target.tenant_id:
        raise Forbidden("That member is not in your organisation.")
    if not actor.has(Permission.MANAGE_MEMBERS):
        raise Forbidden("Only owners and admins can change the team.")
    if target.role == Role.OWNER and actor.role != Role.OWNER:
        raise Forbidden("Only an owner can change another owner.")


def _other_owners(target: Membership) -> int:
    return Membership.objects.filter(tenant_id=target.tenant_id, role=Role.OWNER).exclude(pk=target.pk).count()


def membership_change_role(*, membership: Membership, role: str, actor_membership: Membership) -> Membership:
    with transaction.atomic():
        _lock_memberships(membership.tenant)
        membership = Membership.objects.select_related("tenant", "user").get(pk=membership.pk)
        _check_manages(actor_membership, membership)
        _check_can_grant(actor_membership, role)
        if membership.role == Role.OWNER and role != Role.OWNER and _other_owners(membership) == 0:
            raise Conflict("The last owner cannot be demoted; make someone else an owner first.", code="last_owner")
        if membership.role == role:
            return membership
        old_role, membership.role = membership.role, role
        membership.save(update_fields=["role"])
        tenant_event(
            tenant=membership.tenant,
            action=TenantEvent.Action.ROLE_CHANGE,
            actor=actor_membership.user,
            message=f"{membership.user.email}: {_role_label(old_role)} → {_role_label(role)}.",
            resource_id=membership.pk,
            resource_name=membership.user.email,
        )
    return membership


def membership_remove(*, membership: Membership, actor_membership: Membership) -> None:
    """Removes a member (or lets a member leave); the last owner can never go."""
    with transaction.atomic():
        _lock_memberships(membership.tenant)
        membership = Membership.objects.select_related("tenant", "user").get(pk=membership.pk)
        leaving = membership.pk == actor_membership.pk
        if not leaving:
            _check_manages(actor_membership, membership)
        if membership.role == Role.OWNER and _other_owners(membership) == 0:
            raise Conflict("The last owner cannot be removed; make someone else an owner first.", code="last_owner")
        membership_id = membership.pk
        membership.delete()
        member = f"{membership.user.email} ({_role_label(membership.role)})"
        tenant_event(
            tenant=membership.tenant,
            action=TenantEvent.Action.MEMBER_REMOVE,
            actor=actor_membership.user,
            message=f"{member} left the organisation." if leaving else f"Removed {member}.",
            resource_id=membership_id,
            resource_name=membership.user.email,
        )
