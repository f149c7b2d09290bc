from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from ..core.auth import Principal
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import ThingsGroup
from . import repository, service
from .schemas import GroupCreate, GroupList, GroupOut, GroupPatch

router = APIRouter(tags=["things groups"])
Reader = Annotated[Principal, Depends(authorize("groups:read"))]
Writer = Annotated[Principal, Depends(authorize("groups:write"))]


@router.get("/things-groups", response_model=GroupList, responses=problem_responses())
def list_groups(principal: Reader, session: DbSession, request: Request, response: Response,
                limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                cursor: str | None = None) -> GroupList:
    page = paginate(session, repository.groups_query(principal.account_id), ThingsGroup.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return GroupList(items=service.views(session, principal.account_id, list(page.items)),
                     next_cursor=page.next_cursor)


@router.post("/things-groups", status_code=201, response_model=GroupOut,
             responses=problem_responses("unknown_reference"))
def create_group(body: GroupCreate, principal: Writer, session: DbSession,
                 response: Response) -> GroupOut:
    group = service.create_group(session, principal.account_id, body)
    response.headers["Location"] = f"/v1/things-groups/{group.id}"
    out = service.view(session, principal.account_id, group)
    with_etag(response, out)
    return out


@router.get("/things-groups/{group_id}", response_model=GroupOut, responses=problem_responses())
def get_group(group_id: str, principal: Reader, session: DbSession,
              response: Response) -> GroupOut:
    group = service.require_group(session, principal.account_id, group_id)
    out = service.view(session, principal.account_id, group)
    with_etag(response, out)
    return out


@router.patch("/things-groups/{group_id}", response_model=GroupOut,
              responses=problem_responses("etag_mismatch", "ip_locked", "unknown_reference"))
def patch_group(group_id: str, body: GroupPatch, principal: Writer, session: DbSession,
                request: Request, response: Response) -> GroupOut:
    group = service.require_group(session, principal.account_id, group_id, for_update=True)
    check_if_match(request, service.view(session, principal.account_id, group))
    service.update_group(session, principal.account_id, group, body)
    record_audit(request, group.id, body.model_dump(exclude_unset=True))
    out = service.view(session, principal.account_id, group)
    with_etag(response, out)
    return out


@router.delete("/things-groups/{group_id}", status_code=204,
               responses=problem_responses("etag_mismatch", "in_use", "default_resource"))
def delete_group(group_id: str, principal: Writer, session: DbSession,
                 request: Request) -> Response:
    group = service.require_group(session, principal.account_id, group_id, for_update=True)
    check_if_match(request, service.view(session, principal.account_id, group))
    service.delete_group(session, principal.account_id, group)
    record_audit(request, group_id)
    return Response(status_code=204)
