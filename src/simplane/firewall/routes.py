from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from ..core.auth import Principal
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import IpProfile
from . import repository, service
from .schemas import (
    Chain,
    EvaluateRequest,
    EvaluateResult,
    ProfileCreate,
    ProfileList,
    ProfileOut,
    ProfilePatch,
    RuleCreate,
    RuleList,
    RuleOut,
    RulePatch,
)

router = APIRouter(tags=["ip profiles"])
Reader = Annotated[Principal, Depends(authorize("ip_profiles:read"))]
Writer = Annotated[Principal, Depends(authorize("ip_profiles:write"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/ip-profiles", response_model=ProfileList, responses=problem_responses())
def list_profiles(principal: Reader, session: DbSession, request: Request, response: Response,
                  limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> ProfileList:
    page = paginate(session, repository.profiles_query(principal.account_id), IpProfile.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return ProfileList(items=service.views(session, principal.account_id, list(page.items)),
                       next_cursor=page.next_cursor)


@router.post("/ip-profiles", status_code=201, response_model=ProfileOut,
             responses=problem_responses())
def create_profile(body: ProfileCreate, principal: Writer, session: DbSession,
                   response: Response) -> ProfileOut:
    profile = service.create_profile(session, principal.account_id, body)
    response.headers["Location"] = f"/v1/ip-profiles/{profile.id}"
    out = service.view(session, principal.account_id, profile)
    with_etag(response, out)
    return out


@router.get("/ip-profiles/{profile_id}", response_model=ProfileOut,
            responses=problem_responses())
def get_profile(profile_id: str, principal: Reader, session: DbSession,
                response: Response) -> ProfileOut:
    profile = service.require_profile(session, principal.account_id, profile_id)
    out = service.view(session, principal.account_id, profile)
    with_etag(response, out)
    return out


@router.patch("/ip-profiles/{profile_id}", response_model=ProfileOut,
              responses=problem_responses("etag_mismatch"))
def patch_profile(profile_id: str, body: ProfilePatch, principal: Writer, session: DbSession,
                  request: Request, response: Response) -> ProfileOut:
    profile = service.require_profile(session, principal.account_id, profile_id,
                                      for_update=True)
    check_if_match(request, service.view(session, principal.account_id, profile))
    service.update_profile(session, profile, body)
    record_audit(request, profile.id, body.model_dump(exclude_unset=True))
    out = service.view(session, principal.account_id, profile)
    with_etag(response, out)
    return out


@router.delete("/ip-profiles/{profile_id}", status_code=204,
               responses=problem_responses("etag_mismatch", "in_use", "default_resource"))
def delete_profile(profile_id: str, principal: Writer, session: DbSession,
                   request: Request) -> Response:
    profile = service.require_profile(session, principal.account_id, profile_id,
                                      for_update=True)
    check_if_match(request, service.view(session, principal.account_id, profile))
    service.delete_profile(session, principal.account_id, profile)
    record_audit(request, profile_id)
    return Response(status_code=204)


@router.get("/ip-profiles/{profile_id}/rules", response_model=RuleList,
            responses=problem_responses())
def list_rules(profile_id: str, principal: Reader, session: DbSession, request: Request,
               response: Response,
               chain: Annotated[Chain | None, Query(description="Only this chain")] = None,
               limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> RuleList:
    """Rules ordered by chain (INBOUND first) then position."""
    profile = service.require_profile(session, principal.account_id, profile_id)
    page = service.rules_page(session, principal.account_id, profile, chain=chain, limit=limit,
                              cursor=cursor)
    set_link_header(request, response, page)
    return RuleList(items=[service.rule_view(r) for r in page.items],
                    next_cursor=page.next_cursor)


@router.post("/ip-profiles/{profile_id}/rules", status_code=201, response_model=RuleOut,
             responses=problem_responses("quota_exceeded"))
def create_rule(profile_id: str, body: RuleCreate, principal: Writer, session: DbSession,
                request: Request, response: Response) -> RuleOut:
    profile = service.require_profile(session, principal.account_id, profile_id,
                                      for_update=True)
    rule = service.create_rule(session, principal.account_id, profile, body)
    record_audit(request, rule.id)
    response.headers["Location"] = f"/v1/ip-profiles/{profile.id}/rules/{rule.id}"
    out = service.rule_view(rule)
    with_etag(response, out)
    return out


@router.get("/ip-profiles/{profile_id}/rules/{rule_id}", response_model=RuleOut,
            responses=problem_responses())
def get_rule(profile_id: str, rule_id: str, principal: Reader, session: DbSession,
             response: Response) -> RuleOut:
    profile = service.require_profile(session, principal.account_id, profile_id)
    out = service.rule_view(service.require_rule(session, principal.account_id, profile.id,
                                                 rule_id))
    with_etag(response, out)
    return out


@router.patch("/ip-profiles/{profile_id}/rules/{rule_id}", response_model=RuleOut,
              responses=problem_responses("etag_mismatch", "quota_exceeded"))
def patch_rule(profile_id: str, rule_id: str, body: RulePatch, principal: Writer,
               session: DbSession, request: Request, response: Response) -> RuleOut:
    profile = service.require_profile(session, principal.account_id, profile_id,
                                      for_update=True)
    rule = service.require_rule(session, principal.account_id, profile.id, rule_id)
    check_if_match(request, service.rule_view(rule))
    service.update_rule(session, profile, rule, body)
    record_audit(request, rule.id, body.model_dump(exclude_unset=True))
    out = service.rule_view(rule)
    with_etag(response, out)
    return out


@router.delete("/ip-profiles/{profile_id}/rules/{rule_id}", status_code=204,
               responses=problem_responses("etag_mismatch"))
def delete_rule(profile_id: str, rule_id: str, principal: Writer, session: DbSession,
                request: Request) -> Response:
    profile = service.require_profile(session, principal.account_id, profile_id,
                                      for_update=True)
    rule = service.require_rule(session, principal.account_id, profile.id, rule_id)
    check_if_match(request, service.rule_view(rule))
    service.delete_rule(session, profile, rule)
    record_audit(request, rule_id)
    return Response(status_code=204)


@router.post("/ip-profiles/{profile_id}/evaluate", response_model=EvaluateResult,
             responses=problem_responses())
def evaluate(profile_id: str, body: EvaluateRequest, principal: Reader,
             session: DbSession) -> EvaluateResult:
    """What the profile does with one packet: the first matching rule by position, else the
    chain's default action. `remote_ip` is the source on INBOUND and the destination on
    OUTBOUND; `port` is the Thing's port on INBOUND and the remote port on OUTBOUND."""
    service.check_packet(body)
    action, rule_id, _ = service.evaluate_chain(
        session, principal.account_id, profile_id, body.direction, body.protocol,
        body.remote_ip, body.port)
    return EvaluateResult(action=action, rule_id=rule_id)  # type: ignore[arg-type]
