from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from ..core.auth import Principal
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import Webhook, WebhookDelivery
from . import service
from .schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookPatch,
)

router = APIRouter(tags=["webhooks"])
Reader = Annotated[Principal, Depends(authorize("webhooks:read"))]
Writer = Annotated[Principal, Depends(authorize("webhooks:write"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


def _key(request: Request) -> str:
    return request.app.state.settings.resolved_secret_key()


@router.get("/webhooks", response_model=WebhookList, responses=problem_responses())
def list_webhooks(principal: Reader, session: DbSession, request: Request, response: Response,
                  limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> WebhookList:
    page = paginate(session, service.webhooks_query(principal.account_id), Webhook.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return WebhookList(items=[service.view(w) for w in page.items], next_cursor=page.next_cursor)


@router.post("/webhooks", status_code=201, response_model=WebhookCreated,
             responses=problem_responses())
def create_webhook(body: WebhookCreate, principal: Writer, session: DbSession, request: Request,
                   response: Response) -> WebhookCreated:
    webhook, secret = service.create(session, _key(request), principal.account_id, body)
    response.headers["Location"] = f"/v1/webhooks/{webhook.id}"
    response.headers["Cache-Control"] = "no-store"
    out = WebhookCreated(**service.view(webhook).model_dump(), secret=secret)
    with_etag(response, service.view(webhook))
    return out


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut, responses=problem_responses())
def get_webhook(webhook_id: str, principal: Reader, session: DbSession,
                response: Response) -> WebhookOut:
    return with_etag(response, service.view(  # type: ignore[return-value]
        service.require(session, principal.account_id, webhook_id)))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut,
              responses=problem_responses("etag_mismatch"))
def patch_webhook(webhook_id: str, body: WebhookPatch, principal: Writer, session: DbSession,
                  request: Request, response: Response) -> WebhookOut:
    webhook = service.require(session, principal.account_id, webhook_id, for_update=True)
    check_if_match(request, service.view(webhook))
    service.update(session, _key(request), webhook, body)
    record_audit(request, webhook.id, body.model_dump(exclude_unset=True))
    return with_etag(response, service.view(webhook))  # type: ignore[return-value]


@router.delete("/webhooks/{webhook_id}", status_code=204,
               responses=problem_responses("etag_mismatch"))
def delete_webhook(webhook_id: str, principal: Writer, session: DbSession,
                   request: Request) -> Response:
    webhook = service.require(session, principal.account_id, webhook_id, for_update=True)
    check_if_match(request, service.view(webhook))
    from sqlalchemy import delete

    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    session.delete(webhook)
    service.forget_subscribers(session)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryList,
            responses=problem_responses())
def list_deliveries(webhook_id: str, principal: Reader, session: DbSession, request: Request,
                    response: Response, limit: Limit = DEFAULT_LIMIT,
                    cursor: str | None = None) -> DeliveryList:
    service.require(session, principal.account_id, webhook_id)
    page = paginate(session, service.deliveries_query(principal.account_id, webhook_id),
                    WebhookDelivery.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return DeliveryList(items=[DeliveryOut.model_validate(d, from_attributes=True)
                               for d in page.items], next_cursor=page.next_cursor)
