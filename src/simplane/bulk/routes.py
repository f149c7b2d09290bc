from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from ..core.auth import Principal
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import BulkAction
from . import items, service
from .schemas import BulkActionCreate, BulkActionList, BulkActionOut, ItemList

router = APIRouter(tags=["bulk actions"])
Reader = Annotated[Principal, Depends(authorize("bulk:read"))]
Writer = Annotated[Principal, Depends(authorize("bulk:write"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/bulk-actions", status_code=202, response_model=BulkActionOut,
             responses=problem_responses("unknown_reference"))
def create_bulk_action(body: BulkActionCreate, principal: Writer, session: DbSession,
                       request: Request, response: Response) -> BulkActionOut:
    job = service.create_job(session, principal, body)
    record_audit(request, job.id, {"action": body.action, "target": list(
        body.target.model_dump(exclude_none=True)), "dry_run": body.dry_run, "total": job.total})
    response.headers["Location"] = f"/v1/bulk-actions/{job.id}"
    return with_etag(response, service.view(job))  # type: ignore[return-value]


@router.get("/bulk-actions", response_model=BulkActionList, responses=problem_responses())
def list_bulk_actions(principal: Reader, session: DbSession, request: Request,
                      response: Response, limit: Limit = DEFAULT_LIMIT,
                      cursor: str | None = None) -> BulkActionList:
    page = paginate(session, service.jobs_query(principal.account_id), BulkAction.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return BulkActionList(items=[service.view(j) for j in page.items],
                          next_cursor=page.next_cursor)


@router.get("/bulk-actions/{bulk_action_id}", response_model=BulkActionOut,
            responses=problem_responses())
def get_bulk_action(bulk_action_id: str, principal: Reader, session: DbSession,
                    response: Response) -> BulkActionOut:
    job = service.require_job(session, principal.account_id, bulk_action_id)
    return with_etag(response, service.view(job))  # type: ignore[return-value]


@router.get("/bulk-actions/{bulk_action_id}/items", response_model=ItemList,
            responses=problem_responses())
def list_items(bulk_action_id: str, principal: Reader, session: DbSession, request: Request,
               response: Response,
               status: Literal["PENDING", "SUCCEEDED", "FAILED"] | None = None,
               limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> ItemList:
    job = service.require_job(session, principal.account_id, bulk_action_id)
    page = items.page(session, job, status, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return ItemList(items=list(page.items), next_cursor=page.next_cursor)


@router.post("/bulk-actions/{bulk_action_id}/cancel", response_model=BulkActionOut,
             responses=problem_responses())
def cancel_bulk_action(bulk_action_id: str, principal: Writer, session: DbSession,
                       request: Request, response: Response) -> BulkActionOut:
    job = service.require_job(session, principal.account_id, bulk_action_id, for_update=True)
    service.cancel(session, job)
    record_audit(request, job.id)
    return with_etag(response, service.view(job))  # type: ignore[return-value]
