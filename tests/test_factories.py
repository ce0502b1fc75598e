import pytest

from dossiers.access import access_dossier, visible_dossiers
from dossiers.audience import recipients_for
from dossiers.models import Dossier
from tests.factories import make_dossier, make_organisation, make_user

pytestmark = pytest.mark.django_db


def test_access_helper_shows_own_and_organisation_dossiers_only() -> None:
    owner, member, stranger = make_user(), make_user(), make_user()
    org = make_organisation(owner)
    org.memberships.create(user=member, role="member", watches=False)
    own = make_dossier(owner)
    org_dossier = make_dossier(make_user(), organisation=org, status=Dossier.Status.NEW)
    other = make_dossier(stranger)

    assert set(visible_dossiers(owner)) == {own, org_dossier}
    assert set(visible_dossiers(member)) == {org_dossier}
    assert access_dossier(member, org_dossier.id) == org_dossier
    for user, dossier in [(member, own), (owner, other), (stranger, org_dossier)]:
        with pytest.raises(Exception, match="404"):
            access_dossier(user, dossier.id)
    with pytest.raises(Exception, match="404"):
        access_dossier(owner, "not-a-uuid")


def test_recipients_are_applicant_and_watching_members() -> None:
    owner, silent, applicant = make_user(), make_user(), make_user()
    org = make_organisation(owner)
    org.memberships.create(user=silent, role="member", watches=False)
    other_org = make_organisation(make_user())
    dossier = make_dossier(applicant, organisation=org, status=Dossier.Status.NEW)
    assert recipients_for(dossier) == {applicant.id, owner.id}
    assert other_org.memberships.get().user_id not in recipients_for(dossier)
