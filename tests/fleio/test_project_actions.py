"""Disabling and enabling a client's Keystone project through openstacksdk, against the fake Keystone.

Fleio suspends a client's OpenStack project; Keystone's "Update project" with ``enabled: false`` is how
(identity API v3, ``PATCH /v3/projects/{id}``). A disabled project gets no token, so its owner can neither
resume a server nor create one.
"""

from __future__ import annotations

import json

import openstack.connection
import pytest

from bridge.fleio.connection import connect
from bridge.fleio.server_actions import NovaServerActions, ServerActionError
from bridge.fleio.settings import OpenStackSettings
from tests.fakes.nova import FakeOpenStack

PROJECT = "0c7f4a3b9e2d4c1a8b6f5e4d3c2b1a09"


@pytest.fixture
def actions(fake: FakeOpenStack, conn: openstack.connection.Connection) -> NovaServerActions:
    fake.add_project(PROJECT, "client-42", owner="ada", password="ada-Passw0rd")
    return NovaServerActions(conn)


def owner_can_log_in(fake: FakeOpenStack) -> bool:
    """Whether the project's owner gets a token scoped to it (what resuming or creating a server needs)."""
    settings = OpenStackSettings(
        enabled=True,
        auth_url=fake.auth_url,
        username="ada",
        password="ada-Passw0rd",
        project_name="client-42",
        region_name=fake.region,
    )
    connection = connect(settings)
    try:
        connection.authorize()
    except openstack.exceptions.SDKException as error:
        assert "(HTTP 401)" in str(error)
        return False
    finally:
        connection.close()
    return True


def test_disable_patches_enabled_false_and_the_owner_gets_no_token(
    fake: FakeOpenStack, actions: NovaServerActions
) -> None:
    assert owner_can_log_in(fake)

    assert actions.disable_project(PROJECT) is True

    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.path for r in patches] == [f"/identity/v3/projects/{PROJECT}"]
    assert json.loads(patches[0].body) == {"project": {"enabled": False}}
    assert fake.project(PROJECT).enabled is False
    assert not owner_can_log_in(fake)


def test_enable_gives_the_owner_its_project_back(fake: FakeOpenStack, actions: NovaServerActions) -> None:
    actions.disable_project(PROJECT)
    assert actions.enable_project(PROJECT) is True
    assert fake.project_updates == [(PROJECT, {"enabled": False}), (PROJECT, {"enabled": True})]
    assert owner_can_log_in(fake)


def test_a_project_already_in_the_wanted_state_is_looked_at_and_left_alone(
    fake: FakeOpenStack, actions: NovaServerActions
) -> None:
    assert actions.enable_project(PROJECT) is False
    actions.disable_project(PROJECT)
    assert actions.disable_project(PROJECT) is False
    assert fake.project_updates == [(PROJECT, {"enabled": False})]


def test_an_unknown_project_is_a_404_naming_the_project(actions: NovaServerActions) -> None:
    with pytest.raises(ServerActionError) as raised:
        actions.disable_project("no-such-project")
    assert raised.value.status == 404
    assert str(raised.value) == (
        "openstack /v3/projects/no-such-project: disable of project no-such-project failed: "
        "no such project (HTTP 404)"
    )
