from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import AuditEntry, Credential, User


def get_user(session: Session, account_id: str, user_id: str, *,
             for_update: bool = False) -> User | None:
    statement = select(User).where(User.account_id == account_id, User.id == user_id)
    if for_update:
        statement = statement.with_for_update()
    return session.scalar(statement)


def email_exists(session: Session, email: str) -> bool:
    return session.scalar(select(func.count()).where(User.email == email)) > 0


def active_admin_ids(session: Session, account_id: str, *, for_update: bool = False) -> list[str]:
    statement = select(User.id).where(User.account_id == account_id, User.role == "admin",
                                      User.status == "ACTIVE")
    if for_update:
        statement = statement.with_for_update()
    return list(session.scalars(statement))


def credential_by_client_id(session: Session, client_id: str) -> Credential | None:
    return session.scalar(select(Credential).where(Credential.client_id == client_id))


def users_query(account_id: str):  # type: ignore[no-untyped-def]
    return select(User).where(User.account_id == account_id)


def credentials_query(account_id: str, user_id: str):  # type: ignore[no-untyped-def]
    return select(Credential).where(Credential.account_id == account_id,
                                    Credential.user_id == user_id)


def audit_query(account_id: str):  # type: ignore[no-untyped-def]
    return select(AuditEntry).where(AuditEntry.account_id == account_id)
