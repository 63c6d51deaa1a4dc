"""The audit log in words for the console: who acted and what they did, in the reader's
language, with the stored code kept beside the words (the API, ``GET /v1/audit``, and exports
show the codes alone).

An action's words come from :data:`_ACTIONS` (every action the server records;
tests/server/test_audit_words.py fails when one is missing); an actor's from its kind
(``operator:``, ``console:``, ``installer:``, ``phone:``, ``user:``, ``system:``, ``admin``,
``uplink``, ``lifecycle``), with a console member's display name instead of their number.
"""

from __future__ import annotations

from dataclasses import dataclass

from kagiya.sdk.i18n import N_, _

_ACTIONS: dict[str, str] = {
    "operator.create": N_("operator created"),
    "operator.quota": N_("user-ID quota changed"),
    "operator.end-contract": N_("operator contract ended"),
    "issuer-key.stage": N_("new signing key staged"),
    "issuer-key.rotate": N_("signing key rotated"),
    "token.issue": N_("API sign-in"),
    "token.failed": N_("API sign-in refused"),
    "installer-token.create": N_("installer token issued"),
    "partner.create": N_("partner registered"),
    "partner.delete": N_("partner deleted"),
    "partner.suspend": N_("partner suspended"),
    "partner.resume": N_("partner resumed"),
    "user.create": N_("user ID issued"),
    "user.delete": N_("user ID deleted"),
    "user.suspend": N_("user ID suspended"),
    "user.resume": N_("user ID resumed"),
    "user.leaked": N_("user ID suspended as leaked"),
    "enrollment-code.create": N_("enrollment code issued"),
    "phone.enroll": N_("phone enrolled"),
    "phone.enroll-failed": N_("phone enrollment refused"),
    "phone.token-refresh": N_("phone signed in again"),
    "phone.lost": N_("phone reported lost"),
    "lock.register": N_("lock registered"),
    "lock.update": N_("lock settings changed"),
    "lock.suspend": N_("lock suspended"),
    "lock.resume": N_("lock resumed"),
    "lock.delete": N_("lock deleted"),
    "lock.decommission": N_("lock decommissioned"),
    "lock.identity-replace": N_("lock identity replaced"),
    "lock.maintenance-authorise": N_("lock maintenance authorised"),
    "lock.revocation-floor": N_("revocation list restarted"),
    "lock.uplink-connect": N_("lock connected to the uplink"),
    "lock.uplink-disconnect": N_("lock disconnected from the uplink"),
    "key-request.create": N_("key requested"),
    "key-request.change": N_("key request changed"),
    "key-request.cancel": N_("key request cancelled"),
    "key.issue": N_("key issued to a phone"),
    "log.upload": N_("usage log uploaded"),
    "log.conflict": N_("usage log conflict"),
    "uplink.refused": N_("uplink message refused"),
    "uplink.decommissioned": N_("uplink closed for a decommissioned lock"),
    "sim.active": N_("SIM line active"),
    "sim.suspended": N_("SIM line suspended"),
    "sim.cancelled": N_("SIM line cancelled"),
    "sim.cancel-pending": N_("SIM line cancellation pending"),
    "console.staff-invite": N_("staff member invited"),
    "console.staff-suspend": N_("staff member suspended"),
    "console.staff-resume": N_("staff member resumed"),
    "console.passkey-add": N_("staff passkey created"),
    "notice.publish.notice": N_("notice published"),
    "notice.publish.maintenance": N_("maintenance notice published"),
    "notice.publish.terms": N_("terms published"),
    "notice.withdraw": N_("notice withdrawn"),
    "mypage.invitation": N_("My Page invitation issued"),
    "mypage.passkey-add": N_("My Page passkey created"),
    "mypage.oidc-sign-in": N_("My Page sign-in with an ID"),
    "mypage.oidc-link": N_("ID linked to My Page"),
    "mypage.oidc-link-refused": N_("ID link refused"),
    "mypage.oidc-unlink": N_("ID unlinked from My Page"),
    "mypage.oidc-unlink-refused": N_("ID unlink refused"),
    "mypage.contact-change": N_("contact details changed"),
    "mypage.contract-end-notice": N_("contract-end notice sent"),
    "mypage.withdrawal": N_("My Page account ended"),
    "mypage.withdrawal-cancelled": N_("account end cancelled"),
    "privacy.request": N_("data-subject request made"),
    "privacy.withdraw": N_("data-subject request withdrawn"),
    "privacy.fulfil": N_("data-subject request fulfilled"),
    "privacy.refuse": N_("data-subject request refused"),
    "privacy.provision": N_("third-party provision recorded"),
}


def known_actions() -> frozenset[str]:
    """Every action that has words."""
    return frozenset(_ACTIONS)


def action_words(action: str) -> str:
    """What was done, in the current language (the code itself when it has no words)."""
    words = _ACTIONS.get(action)
    return _(words) if words is not None else action


@dataclass
class Actor:
    """Who acted, in words, and the identifier the entry stores (empty when the words say
    it all)."""

    words: str
    ref: str


def actor_words(actor: str, staff: dict[int, str]) -> Actor:
    """``actor`` in the current language; ``staff`` maps the operator's console members'
    numbers to their display names."""
    kind, _sep, rest = actor.partition(":")
    if kind == "console":
        number = rest.rpartition(":staff")[2]
        name = staff.get(int(number)) if number.isdigit() else None
        return Actor(_("staff member {name}").format(name=name) if name else _("staff member"),
                     "" if name else rest)
    if kind == "operator":
        return Actor(_("operator API"), "")
    if kind == "installer":
        return Actor(_("installer"), rest.rpartition(":")[2])
    if kind == "phone":
        return Actor(_("phone"), rest)
    if kind == "user":
        return Actor(_("driver (My Page)"), rest)
    if kind == "system":  # the server's own scheduled work, e.g. system:contract-end
        return Actor(_("the service, automatically"), rest)
    if actor == "admin":
        return Actor(_("service admin"), "")
    if actor == "uplink":
        return Actor(_("connected lock (uplink)"), "")
    if actor == "lifecycle":
        return Actor(_("SIM line lifecycle"), "")
    return Actor(actor, "")
