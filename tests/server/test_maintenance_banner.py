"""The operator's maintenance banner (contract portal 第7条) before sign-in: the sign-in page
of the operator's My Page address (``/my/sign-in?operator=<id>``), of a browser that used
that operator's My Page before, and the invitation page show it; another operator's, an
unknown one and a window that ended do not (SQLite and PostgreSQL)."""

from __future__ import annotations

from kagiya.server.client import OperatorClient

from tests.server.conftest import World

ORIGIN = "http://localhost"
DAY = 86400
BANNER = 'data-testid="maintenance-banner"'


def _maintenance(op: OperatorClient, starts: int, ends: int) -> None:
    op._request("POST", "/v1/notices", json={
        "kind": "maintenance", "starts_at": starts, "ends_at": ends,
        "title": {"ja": "サーバーの保守", "en": "Server maintenance"},
        "body": {"ja": "本文", "en": "Text"}})


def test_banner_before_sign_in(world: World) -> None:
    op, other = world.operator(), world.operator(name="Other Lease")
    now = int(world.clock())
    _maintenance(op, now + DAY, now + DAY + 7200)
    http = world.http
    en = {"Accept-Language": "en"}

    r = http.get(f"{ORIGIN}/my/sign-in", headers=en)
    assert r.status_code == 200 and BANNER not in r.text  # which operator: not known
    r = http.get(f"{ORIGIN}/my/sign-in?operator={op.operator_id}", headers=en)  # type: ignore[attr-defined]
    assert BANNER in r.text and "Server maintenance" in r.text and "Maintenance from" in r.text
    cookie = r.cookies.get("kagiya_my_operator")
    assert cookie == op.operator_id  # type: ignore[attr-defined]
    http.cookies.clear()
    # the same browser later, at the plain address: the operator it used
    r = http.get(f"{ORIGIN}/my/sign-in", headers={**en, "Cookie": f"kagiya_my_operator={cookie}"})
    assert BANNER in r.text
    r = http.get(f"{ORIGIN}/my/sign-in", headers={"Accept-Language": "ja",
                                                  "Cookie": f"kagiya_my_operator={cookie}"})
    assert "サーバーの保守" in r.text and "メンテナンス" in r.text
    http.cookies.clear()
    r = http.get(f"{ORIGIN}/my/sign-in", params={"operator": other.operator_id},  # type: ignore[attr-defined]
                 headers={**en, "Cookie": f"kagiya_my_operator={cookie}"})
    assert BANNER not in r.text  # another operator's address: its own (no) banners
    http.cookies.clear()
    for who in ("op_unknown", "x" * 200):
        r = http.get(f"{ORIGIN}/my/sign-in", params={"operator": who}, headers=en)
        assert r.status_code == 200 and BANNER not in r.text
        assert "kagiya_my_operator" not in r.headers.get("set-cookie", "")
        http.cookies.clear()

    # the invitation page: the operator is the invited user's
    user = op.create_user()["user_id"]
    url = op.my_page_invitation(user)["url"]
    r = http.get(f"{ORIGIN}/my/welcome?{url.split('?', 1)[1]}", headers=en)
    assert r.status_code == 200 and BANNER in r.text
    assert r.cookies.get("kagiya_my_operator") == op.operator_id  # type: ignore[attr-defined]
    http.cookies.clear()

    world.clock.advance(DAY + 60)  # under way
    r = http.get(f"{ORIGIN}/my/sign-in?operator={op.operator_id}", headers=en)  # type: ignore[attr-defined]
    assert "Maintenance under way until" in r.text
    http.cookies.clear()
    world.clock.advance(7200)  # over: no banner
    r = http.get(f"{ORIGIN}/my/sign-in?operator={op.operator_id}", headers=en)  # type: ignore[attr-defined]
    assert BANNER not in r.text
