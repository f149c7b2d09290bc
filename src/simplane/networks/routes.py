from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse

from ..core.auth import Principal, allows
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import IpPool, NatRule, Network, Route, VpnTunnel
from . import nat, repository, routing, service, trace, vpn
from .schemas import (
    IpPoolCreate,
    IpPoolList,
    IpPoolOut,
    IpPoolPatch,
    NatRuleCreate,
    NatRuleList,
    NatRuleOut,
    NatRulePatch,
    NetworkCreate,
    NetworkList,
    NetworkOut,
    NetworkPatch,
    RouteCreate,
    RouteList,
    RouteOut,
    TraceOut,
    TraceRequest,
    VpnTunnelCreate,
    VpnTunnelList,
    VpnTunnelOut,
    VpnTunnelPatch,
)

router = APIRouter(tags=["networks"])
Reader = Annotated[Principal, Depends(authorize("networks:read"))]
Writer = Annotated[Principal, Depends(authorize("networks:write"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
NETWORK = "/networks/{network_id}"


def _settings(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.settings


def _created(response: Response, location: str, out):  # type: ignore[no-untyped-def]
    response.headers["Location"] = location
    return with_etag(response, out)


# --- networks ------------------------------------------------------------------------------

@router.get("/networks", response_model=NetworkList, responses=problem_responses())
def list_networks(principal: Reader, session: DbSession, request: Request, response: Response,
                  limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> NetworkList:
    page = paginate(session, repository.networks_query(principal.account_id), Network.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return NetworkList(items=service.network_views(session, _settings(request),
                                                   principal.account_id, page.items),
                       next_cursor=page.next_cursor)


@router.post("/networks", status_code=201, response_model=NetworkOut,
             responses=problem_responses("nat_ip_exhausted"))
def create_network(body: NetworkCreate, principal: Writer, session: DbSession,
                   request: Request, response: Response) -> NetworkOut:
    network = service.create_network(session, _settings(request), principal.account_id, body)
    return _created(response, f"/v1/networks/{network.id}",
                    service.network_view(session, _settings(request), network))


@router.get(NETWORK, response_model=NetworkOut, responses=problem_responses())
def get_network(network_id: str, principal: Reader, session: DbSession, request: Request,
                response: Response) -> NetworkOut:
    network = service.require_network(session, principal.account_id, network_id)
    return with_etag(response, service.network_view(session, _settings(request), network))


@router.patch(NETWORK, response_model=NetworkOut, responses=problem_responses("etag_mismatch"))
def patch_network(network_id: str, body: NetworkPatch, principal: Writer, session: DbSession,
                  request: Request, response: Response) -> NetworkOut:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    check_if_match(request, service.network_view(session, _settings(request), network))
    service.update_network(session, network, body)
    record_audit(request, network.id, body.model_dump(exclude_unset=True))
    return with_etag(response, service.network_view(session, _settings(request), network))


@router.delete(NETWORK, status_code=204,
               responses=problem_responses("etag_mismatch", "in_use", "default_resource"))
def delete_network(network_id: str, principal: Writer, session: DbSession,
                   request: Request) -> Response:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    check_if_match(request, service.network_view(session, _settings(request), network))
    service.delete_network(session, network)
    return Response(status_code=204)


# --- IP pools ------------------------------------------------------------------------------

def _pool_view(session, pool: IpPool) -> IpPoolOut:  # type: ignore[no-untyped-def]
    return service.pool_views(session, [pool])[0]


def _require_pool(session, principal: Principal, network_id: str, pool_id: str, *,  # type: ignore[no-untyped-def]
                  for_update: bool = False) -> IpPool:
    from ..core.errors import not_found

    service.require_network(session, principal.account_id, network_id)
    pool = repository.get_pool(session, principal.account_id, network_id, pool_id,
                               for_update=for_update)
    if pool is None:
        raise not_found("IP pool", pool_id)
    return pool


@router.get(NETWORK + "/ip-pools", response_model=IpPoolList, responses=problem_responses())
def list_pools(network_id: str, principal: Reader, session: DbSession, request: Request,
               response: Response, limit: Limit = DEFAULT_LIMIT,
               cursor: str | None = None) -> IpPoolList:
    service.require_network(session, principal.account_id, network_id)
    page = paginate(session, repository.pools_query(principal.account_id, network_id), IpPool.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return IpPoolList(items=service.pool_views(session, page.items), next_cursor=page.next_cursor)


@router.post(NETWORK + "/ip-pools", status_code=201, response_model=IpPoolOut,
             responses=problem_responses("overlap", "ip_quota_exceeded"))
def create_pool(network_id: str, body: IpPoolCreate, principal: Writer, session: DbSession,
                response: Response) -> IpPoolOut:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    pool = service.create_pool(session, network, body)
    return _created(response, f"/v1/networks/{network_id}/ip-pools/{pool.id}",
                    _pool_view(session, pool))


@router.get(NETWORK + "/ip-pools/{pool_id}", response_model=IpPoolOut,
            responses=problem_responses())
def get_pool(network_id: str, pool_id: str, principal: Reader, session: DbSession,
             response: Response) -> IpPoolOut:
    pool = _require_pool(session, principal, network_id, pool_id)
    return with_etag(response, _pool_view(session, pool))


@router.patch(NETWORK + "/ip-pools/{pool_id}", response_model=IpPoolOut,
              responses=problem_responses("etag_mismatch", "overlap", "ip_quota_exceeded",
                                          "in_use"))
def patch_pool(network_id: str, pool_id: str, body: IpPoolPatch, principal: Writer,
               session: DbSession, request: Request, response: Response) -> IpPoolOut:
    service.require_network(session, principal.account_id, network_id, for_update=True)
    pool = _require_pool(session, principal, network_id, pool_id, for_update=True)
    check_if_match(request, _pool_view(session, pool))
    service.resize_pool(session, pool, body)
    record_audit(request, pool.id, body.model_dump(exclude_unset=True))
    return with_etag(response, _pool_view(session, pool))


@router.delete(NETWORK + "/ip-pools/{pool_id}", status_code=204,
               responses=problem_responses("etag_mismatch", "in_use"))
def delete_pool(network_id: str, pool_id: str, principal: Writer, session: DbSession,
                request: Request) -> Response:
    service.require_network(session, principal.account_id, network_id, for_update=True)
    pool = _require_pool(session, principal, network_id, pool_id, for_update=True)
    check_if_match(request, _pool_view(session, pool))
    service.delete_pool(session, pool)
    record_audit(request, pool_id)
    return Response(status_code=204)


# --- routes --------------------------------------------------------------------------------

def _route_out(route: Route) -> RouteOut:
    return RouteOut.model_validate(route, from_attributes=True)


@router.get(NETWORK + "/routes", response_model=RouteList, responses=problem_responses())
def list_routes(network_id: str, principal: Reader, session: DbSession, request: Request,
                response: Response, limit: Limit = DEFAULT_LIMIT,
                cursor: str | None = None) -> RouteList:
    service.require_network(session, principal.account_id, network_id)
    page = paginate(session, repository.routes_query(principal.account_id, network_id), Route.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return RouteList(items=[_route_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.post(NETWORK + "/routes", status_code=201, response_model=RouteOut,
             responses=problem_responses("conflict", "unknown_reference"))
def create_route(network_id: str, body: RouteCreate, principal: Writer, session: DbSession,
                 response: Response) -> RouteOut:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    route = routing.create_route(session, network, body)
    return _created(response, f"/v1/networks/{network_id}/routes/{route.id}", _route_out(route))


@router.get(NETWORK + "/routes/{route_id}", response_model=RouteOut,
            responses=problem_responses())
def get_route(network_id: str, route_id: str, principal: Reader, session: DbSession,
              response: Response) -> RouteOut:
    network = service.require_network(session, principal.account_id, network_id)
    return with_etag(response, _route_out(routing.require_route(session, network, route_id)))


@router.delete(NETWORK + "/routes/{route_id}", status_code=204,
               responses=problem_responses("etag_mismatch"))
def delete_route(network_id: str, route_id: str, principal: Writer, session: DbSession,
                 request: Request) -> Response:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    route = routing.require_route(session, network, route_id)
    check_if_match(request, _route_out(route))
    session.delete(route)
    return Response(status_code=204)


# --- NAT port forwarding -------------------------------------------------------------------

def _nat_out(rule: NatRule) -> NatRuleOut:
    return NatRuleOut.model_validate(rule, from_attributes=True)


@router.get(NETWORK + "/nat-rules", response_model=NatRuleList, responses=problem_responses())
def list_nat_rules(network_id: str, principal: Reader, session: DbSession, request: Request,
                   response: Response, limit: Limit = DEFAULT_LIMIT,
                   cursor: str | None = None) -> NatRuleList:
    service.require_network(session, principal.account_id, network_id)
    page = paginate(session, repository.nat_rules_query(principal.account_id, network_id),
                    NatRule.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return NatRuleList(items=[_nat_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.post(NETWORK + "/nat-rules", status_code=201, response_model=NatRuleOut,
             responses=problem_responses("conflict", "ip_not_locked", "not_on_network",
                                         "unknown_reference", "nat_ip_exhausted"))
def create_nat_rule(network_id: str, body: NatRuleCreate, principal: Writer,
                    session: DbSession, response: Response) -> NatRuleOut:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    rule = nat.create_rule(session, network, body)
    return _created(response, f"/v1/networks/{network_id}/nat-rules/{rule.id}", _nat_out(rule))


@router.get(NETWORK + "/nat-rules/{rule_id}", response_model=NatRuleOut,
            responses=problem_responses())
def get_nat_rule(network_id: str, rule_id: str, principal: Reader, session: DbSession,
                 response: Response) -> NatRuleOut:
    network = service.require_network(session, principal.account_id, network_id)
    return with_etag(response, _nat_out(nat.require_rule(session, network, rule_id)))


@router.patch(NETWORK + "/nat-rules/{rule_id}", response_model=NatRuleOut,
              responses=problem_responses("etag_mismatch", "conflict"))
def patch_nat_rule(network_id: str, rule_id: str, body: NatRulePatch, principal: Writer,
                   session: DbSession, request: Request, response: Response) -> NatRuleOut:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    rule = nat.require_rule(session, network, rule_id, for_update=True)
    check_if_match(request, _nat_out(rule))
    nat.update_rule(session, network, rule, body)
    record_audit(request, rule.id, body.model_dump(exclude_unset=True))
    return with_etag(response, _nat_out(rule))


@router.delete(NETWORK + "/nat-rules/{rule_id}", status_code=204,
               responses=problem_responses("etag_mismatch"))
def delete_nat_rule(network_id: str, rule_id: str, principal: Writer, session: DbSession,
                    request: Request) -> Response:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    rule = nat.require_rule(session, network, rule_id, for_update=True)
    check_if_match(request, _nat_out(rule))
    session.delete(rule)
    return Response(status_code=204)


# --- VPN tunnels ---------------------------------------------------------------------------

@router.get(NETWORK + "/vpn-tunnels", response_model=VpnTunnelList,
            responses=problem_responses())
def list_tunnels(network_id: str, principal: Reader, session: DbSession, request: Request,
                 response: Response, limit: Limit = DEFAULT_LIMIT,
                 cursor: str | None = None) -> VpnTunnelList:
    network = service.require_network(session, principal.account_id, network_id)
    page = paginate(session, repository.tunnels_query(principal.account_id, network_id),
                    VpnTunnel.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    settings = _settings(request)
    return VpnTunnelList(items=[vpn.view(session, settings, network, t) for t in page.items],
                         next_cursor=page.next_cursor)


@router.post(NETWORK + "/vpn-tunnels", status_code=201, response_model=VpnTunnelOut,
             responses=problem_responses("overlap", "conflict"))
def create_tunnel(network_id: str, body: VpnTunnelCreate, principal: Writer,
                  session: DbSession, request: Request, response: Response) -> VpnTunnelOut:
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    tunnel = vpn.create_tunnel(session, _settings(request), network, body)
    return _created(response, f"/v1/networks/{network_id}/vpn-tunnels/{tunnel.id}",
                    vpn.view(session, _settings(request), network, tunnel))


@router.get(NETWORK + "/vpn-tunnels/{tunnel_id}", response_model=VpnTunnelOut,
            responses=problem_responses())
def get_tunnel(network_id: str, tunnel_id: str, principal: Reader, session: DbSession,
               request: Request, response: Response) -> VpnTunnelOut:
    network = service.require_network(session, principal.account_id, network_id)
    tunnel = vpn.require_tunnel(session, network, tunnel_id)
    return with_etag(response, vpn.view(session, _settings(request), network, tunnel))


@router.patch(NETWORK + "/vpn-tunnels/{tunnel_id}", response_model=VpnTunnelOut,
              responses=problem_responses("etag_mismatch", "overlap", "conflict"))
def patch_tunnel(network_id: str, tunnel_id: str, body: VpnTunnelPatch, principal: Writer,
                 session: DbSession, request: Request, response: Response) -> VpnTunnelOut:
    settings = _settings(request)
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    tunnel = vpn.require_tunnel(session, network, tunnel_id, for_update=True)
    check_if_match(request, vpn.view(session, settings, network, tunnel))
    vpn.update_tunnel(session, settings, network, tunnel, body)
    record_audit(request, tunnel.id, body.model_dump(exclude_unset=True))
    return with_etag(response, vpn.view(session, settings, network, tunnel))


@router.delete(NETWORK + "/vpn-tunnels/{tunnel_id}", status_code=204,
               responses=problem_responses("etag_mismatch"))
def delete_tunnel(network_id: str, tunnel_id: str, principal: Writer, session: DbSession,
                  request: Request) -> Response:
    settings = _settings(request)
    network = service.require_network(session, principal.account_id, network_id, for_update=True)
    tunnel = vpn.require_tunnel(session, network, tunnel_id, for_update=True)
    check_if_match(request, vpn.view(session, settings, network, tunnel))
    vpn.delete_tunnel(session, tunnel)
    return Response(status_code=204)


@router.get(
    NETWORK + "/vpn-tunnels/{tunnel_id}/peer-config",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "strongSwan swanctl.conf for the customer's gateway"},
               **problem_responses()},
)
def peer_config(network_id: str, tunnel_id: str, principal: Reader, session: DbSession,
                request: Request,
                format: Literal["swanctl"] = "swanctl") -> PlainTextResponse:  # noqa: A002
    network = service.require_network(session, principal.account_id, network_id)
    tunnel = vpn.require_tunnel(session, network, tunnel_id)
    text = vpn.swanctl_conf(session, _settings(request), network, tunnel,
                            include_psk=allows(principal.role, "secrets:read"))
    return PlainTextResponse(text, headers={"Cache-Control": "no-store"})


# --- packet trace --------------------------------------------------------------------------

@router.post(NETWORK + "/trace", response_model=TraceOut, responses=problem_responses())
def trace_packet(network_id: str, body: TraceRequest, principal: Reader,
                 session: DbSession) -> TraceOut:
    network = service.require_network(session, principal.account_id, network_id)
    return trace.trace(session, network, body)
