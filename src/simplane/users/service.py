"""Users of an account, their API credentials, and the token exchange."""

from __future__ import annotations

import re

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.db import advisory_lock
from ..core.errors import bad_field, not_found, precondition
from ..core.ids import new_id
from ..core.security import hash_secret, new_client_id, new_client_secret, verify_secret
from ..models import Credential, User, utcnow
from . import repository

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def validate_email(session: Session, email: str) -> None:
    if not _EMAIL.match(email) or len(email) > 254:
        raise bad_field("email", f"{email!r} is not an email address")
    if repository.email_exists(session, email):
        raise precondition("email_taken", f"{email} already belongs to a user")


def authenticate_client(session: Session, client_id: str, client_secret: str) -> Credential | None:
    """The credential, when the secret matches and its user is active; else None."""
    # PostgreSQL text cannot hold NUL, and no client id contains one: unknown, not an error.
    credential = (None if "\x00" in client_id
                  else repository.credential_by_client_id(session, client_id))
    if not verify_secret(credential.secret_hash if credential else None, client_secret):
        return None
    assert credential is not None
    user = repository.get_user(session, credential.account_id, credential.user_id)
    if user is None or user.status != "ACTIVE":
        return None
    credential.last_used_at = utcnow()
    session.flush()
    return credential


def require_user(session: Session, account_id: str, user_id: str, *,
                 for_update: bool = False) -> User:
    user = repository.get_user(session, account_id, user_id, for_update=for_update)
    if user is None:
        raise not_found("user", user_id)
    return user


def create_user(session: Session, account_id: str, *, email: str, name: str, role: str) -> User:
    email = normalise_email(email)
    validate_email(session, email)
    user = User(id=new_id("user"), account_id=account_id, email=email, name=name, role=role,
                status="ACTIVE")
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        # Another request (of any account) inserted this email after our check: the unique
        # index decides, and the loser answers like any other taken email.
        if "email" not in str(exc.orig):
            raise
        raise precondition("email_taken", f"{email} already belongs to a user") from None
    return user


def _ensure_other_admin(session: Session, account_id: str, user: User) -> None:
    # The caller holds its target's row lock; locking the other admins' rows too would deadlock
    # two admins removing each other. One lock per account serialises these checks instead, and
    # the read after it sees the other's committed change.
    advisory_lock(session, f"last-admin:{account_id}")
    admins = repository.active_admin_ids(session, account_id)
    if admins == [user.id]:
        raise precondition("last_admin", f"user {user.id} is the account's last active admin")


def update_user(session: Session, account_id: str, user: User, *, name: str | None,
                role: str | None, status: str | None) -> User:
    loses_admin = user.role == "admin" and user.status == "ACTIVE" and (
        (role is not None and role != "admin") or status == "DISABLED")
    if loses_admin:
        _ensure_other_admin(session, account_id, user)
    if name is not None:
        user.name = name
    if role is not None:
        user.role = role
    if status is not None:
        if status == "DISABLED" and user.status != "DISABLED":
            # Tokens issued until now stay dead even if the user is enabled again later.
            user.tokens_valid_after = utcnow()
        user.status = status
    session.flush()
    return user


def delete_user(session: Session, account_id: str, user: User) -> None:
    if user.role == "admin" and user.status == "ACTIVE":
        _ensure_other_admin(session, account_id, user)
    session.execute(delete(Credential).where(Credential.account_id == account_id,
                                             Credential.user_id == user.id))
    session.delete(user)
    session.flush()


def create_credential(session: Session, account_id: str, user: User,
                      name: str) -> tuple[Credential, str]:
    secret = new_client_secret()
    credential = Credential(id=new_id("credential"), account_id=account_id, user_id=user.id,
                            client_id=new_client_id(), secret_hash=hash_secret(secret), name=name)
    session.add(credential)
    session.flush()
    return credential, secret


def delete_credential(session: Session, account_id: str, user: User, client_id: str) -> None:
    credential = repository.credential_by_client_id(session, client_id)
    if credential is None or credential.account_id != account_id or credential.user_id != user.id:
        raise not_found("credential", client_id)
    session.delete(credential)
    session.flush()


def authenticate_network_client(session: Session, client_id: str, client_secret: str) -> bool:
    from sqlalchemy import select

    from ..models import NetworkCredential

    credential = session.scalar(select(NetworkCredential).where(
        NetworkCredential.client_id == client_id))
    return verify_secret(credential.secret_hash if credential else None, client_secret)


def create_network_credential(session: Session, name: str) -> tuple[str, str]:
    from ..models import NetworkCredential

    client_id, secret = "net_" + new_client_id().removeprefix("cli_"), new_client_secret()
    session.add(NetworkCredential(id=new_id("network_credential"), client_id=client_id,
                                  secret_hash=hash_secret(secret), name=name))
    session.flush()
    return client_id, secret
