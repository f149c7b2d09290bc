def test_smoke(tenant):
    things = tenant.things(2)
    r = tenant.admin.patch(f"/v1/things/{things[0]['id']}", json={"state": "ACTIVE"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ACTIVE"
    assert tenant.admin.get("/v1/account").status_code == 200
    assert tenant.admin.get("/v1/things-groups").json()["items"][0]["thing_count"] == 2
