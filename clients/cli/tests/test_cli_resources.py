"""Machines and the other resources: tables, --json, --wait, names resolved to ids, what is sent."""

import json

import httpx
from fakeapi import FLAVORS, IMAGES, instance, page

from hangar_cli.errors import FAILED, NOT_FOUND, TIMEOUT, USAGE


def test_instances_list_is_a_table_with_names_not_ids(api, hangar):
    api.on("GET", "instances/", page([instance(labels={"env": "prod"}), instance(name="db-1", state="stopped")]))
    result = hangar("instances", "list")
    assert result.exit_code == 0
    assert "web-1" in result.stdout and "db-1" in result.stdout
    assert "c1.micro" in result.stdout and "Debian 12" in result.stdout
    assert FLAVORS[0]["id"] not in result.stdout
    assert "env=prod" in result.stdout


def test_list_follows_every_page_and_json_is_the_whole_list(api, hangar):
    second = "http://hangar.test/api/v1/instances/?page=2&per_page=200"
    api.on(
        "GET",
        "instances/",
        lambda request: (
            page([instance(name="web-2")])
            if request.url.params.get("page") == "2"
            else page([instance()], next_url=second)
        ),
    )
    result = hangar("instances", "list", "--json")
    assert result.exit_code == 0
    assert [item["name"] for item in result.json()] == ["web-1", "web-2"]


def test_list_filters_are_sent_as_query_parameters(api, hangar):
    api.on("GET", "instances/", page([]))
    result = hangar("instances", "list", "--state", "running", "--label", "env=prod", "--label", "team")
    assert result.exit_code == 0
    params = api.requests[-1].url.params
    assert params.get_list("state") == ["running"]
    assert params.get_list("label") == ["env=prod", "team"]
    assert "No instances." in result.stderr


def test_create_resolves_names_sends_labels_and_an_idempotency_key_then_waits_until_running(api, hangar):
    api.on("GET", "ssh-keys/", page([{"id": "55555555-5555-4555-8555-555555555555", "name": "laptop"}]))
    api.on("POST", "instances/", instance(state="pending"))
    api.on("GET", f"instances/{instance()['id']}/", [instance(state="building"), instance(state="running")])
    result = hangar(
        "instances",
        "create",
        "web-1",
        "--flavor",
        "c1.micro",
        "--image",
        "debian 12",
        "--key",
        "laptop",
        "--label",
        "env=prod",
        "--wait",
    )
    assert result.exit_code == 0, result.stderr
    [body] = api.sent("POST", "instances/")
    assert body == {
        "name": "web-1",
        "flavor": FLAVORS[0]["id"],
        "image": IMAGES[0]["id"],
        "ssh_keys": ["55555555-5555-4555-8555-555555555555"],
        "labels": {"env": "prod"},
    }
    post = next(r for r in api.requests if r.method == "POST")
    assert post.headers["Idempotency-Key"] and post.headers["Authorization"] == "Bearer hgr_test"
    assert "instance web-1: running" in result.stderr
    assert "running" in result.stdout


def test_wait_ends_with_code_7_and_the_reason_when_the_machine_fails(api, hangar):
    api.on("POST", "instances/", instance(state="pending"))
    api.on("GET", f"instances/{instance()['id']}/", instance(state="error", error_reason="No host has room."))
    result = hangar("instances", "create", "web-1", "-f", "c1.micro", "-i", "Debian 12", "--wait")
    assert result.exit_code == FAILED
    assert "No host has room." in result.stderr


def test_wait_gives_up_with_code_5(api, hangar):
    api.on("GET", "instances/", page([instance(state="stopped")]))
    api.on("POST", f"instances/{instance()['id']}/actions/", instance(state="starting"))
    api.on("GET", f"instances/{instance()['id']}/", instance(state="starting"))
    result = hangar("instances", "start", "web-1", "--wait", "--timeout", "1")
    assert result.exit_code == TIMEOUT
    assert "still 'starting'" in result.stderr


def test_actions_post_the_verb_and_resize_resolves_the_flavor(api, hangar):
    api.on("GET", "instances/", page([instance(state="stopped")]))
    api.on("POST", f"instances/{instance()['id']}/actions/", instance(state="resizing"))
    assert hangar("instances", "resize", "web-1", "--flavor", "c1.small").exit_code == 0
    assert hangar("instances", "stop", "web-1").exit_code == 0
    assert api.sent("POST", f"instances/{instance()['id']}/actions/") == [
        {"type": "resize", "flavor": FLAVORS[1]["id"]},
        {"type": "stop"},
    ]


def test_an_unknown_name_is_code_4_and_says_how_to_list(api, hangar):
    api.on("GET", "instances/", page([instance(name="web-10")]))
    result = hangar("instances", "show", "web-1")
    assert result.exit_code == NOT_FOUND
    assert "No instance named 'web-1'" in result.stderr and "hangar instances list" in result.stderr


def test_an_unknown_flavor_lists_the_known_ones(api, hangar):
    result = hangar("instances", "create", "web-1", "-f", "huge", "-i", "Debian 12")
    assert result.exit_code == NOT_FOUND
    assert "c1.micro, c1.small" in result.stderr


def test_two_resources_with_one_name_ask_for_the_id(api, hangar):
    api.on("GET", "networks/", page([{"id": "a", "name": "backend"}, {"id": "b", "name": "backend"}]))
    result = hangar("networks", "show", "backend")
    assert result.exit_code == USAGE
    assert "use the id (a, b)" in result.stderr


def test_delete_asks_and_without_a_terminal_needs_yes(api, hangar):
    api.on("GET", "instances/", page([instance()]))
    api.on("DELETE", f"instances/{instance()['id']}/", instance(state="deleting"))
    refused = hangar("instances", "delete", "web-1")
    assert refused.exit_code == USAGE and "--yes" in refused.stderr
    assert not api.sent("DELETE", f"instances/{instance()['id']}/")
    api.on("GET", f"instances/{instance()['id']}/", instance(state="deleted"))
    done = hangar("instances", "delete", "web-1", "--yes", "--wait")
    assert done.exit_code == 0
    assert "instance web-1: deleted" in done.stderr


def test_firewall_rules_add_and_remove_replace_the_rule_set(api, hangar):
    firewall = {
        "id": "66666666-6666-4666-8666-666666666666",
        "name": "web",
        "rules": [
            {
                "direction": "in",
                "protocol": "tcp",
                "port_min": 22,
                "port_max": 22,
                "cidr": "0.0.0.0/0",
                "description": "",
            }
        ],
        "instances": [],
    }
    api.on("GET", "firewalls/", page([firewall]))
    api.on("PATCH", f"firewalls/{firewall['id']}/", lambda request: {**firewall, **json.loads(request.content)})
    added = hangar("firewalls", "rules", "add", "web", "in tcp 8000-8080 10.0.0.0/8", "--description", "app")
    assert added.exit_code == 0, added.stderr
    assert "in tcp 8000-8080 10.0.0.0/8" in added.stdout
    removed = hangar("firewalls", "rules", "remove", "web", "1")
    assert removed.exit_code == 0
    assert api.sent("PATCH", f"firewalls/{firewall['id']}/") == [
        {
            "rules": [
                {"direction": "in", "protocol": "tcp", "port_min": 22, "port_max": 22, "cidr": "0.0.0.0/0"},
                {
                    "direction": "in",
                    "protocol": "tcp",
                    "port_min": 8000,
                    "port_max": 8080,
                    "cidr": "10.0.0.0/8",
                    "description": "app",
                },
            ]
        },
        {"rules": []},
    ]
    assert hangar("firewalls", "rules", "remove", "web", "5").exit_code == USAGE
    assert hangar("firewalls", "create", "x", "--rule", "sideways tcp").exit_code == USAGE


def test_label_set_merges_and_unset_removes(api, hangar):
    key = {"id": "77777777-7777-4777-8777-777777777777", "name": "laptop", "labels": {"team": "web"}}
    api.on("GET", "ssh-keys/", page([key]))
    api.on("PATCH", f"ssh-keys/{key['id']}/", key)
    assert hangar("label", "set", "keys", "laptop", "env=prod", "team=db").exit_code == 0
    assert hangar("label", "unset", "keys", "laptop", "team").exit_code == 0
    assert api.sent("PATCH", f"ssh-keys/{key['id']}/") == [{"labels": {"team": "db", "env": "prod"}}, {"labels": {}}]
    missing = hangar("label", "unset", "keys", "laptop", "nope")
    assert missing.exit_code == USAGE and "has no label 'nope'" in missing.stderr
    assert hangar("label", "set", "machines", "laptop", "a=b").exit_code == USAGE
    assert hangar("instances", "list", "--label", "=x").exit_code == USAGE


def test_addresses_allocate_assign_unassign_release(api, hangar):
    address = {"id": "88888888-8888-4888-8888-888888888888", "address": "203.0.113.7", "state": "allocated"}
    api.on("GET", "instances/", page([instance()]))
    api.on("GET", "ips/", page([address]))
    api.on("POST", "ips/", address)
    api.on("POST", f"ips/{address['id']}/actions/", {**address, "state": "assigned", "instance": instance()["id"]})
    api.on("DELETE", f"ips/{address['id']}/", lambda request: httpx.Response(204))
    assert hangar("addresses", "allocate", "--region", "default").exit_code == 0
    assigned = hangar("addresses", "assign", "203.0.113.7", "web-1")
    assert assigned.exit_code == 0 and "web-1" in assigned.stdout
    assert hangar("addresses", "unassign", "203.0.113.7").exit_code == 0
    released = hangar("addresses", "release", "203.0.113.7", "--yes")
    assert released.exit_code == 0 and "Released 203.0.113.7" in released.stderr
    assert api.sent("POST", "ips/") == [{"region": "default"}]
    assert api.sent("POST", f"ips/{address['id']}/actions/") == [
        {"type": "assign", "instance": instance()["id"]},
        {"type": "unassign"},
    ]


def test_volumes_create_attach_detach_extend_and_snapshots(api, hangar):
    volume = {"id": "99999999-9999-4999-8999-999999999999", "name": "data", "state": "available", "size_gib": 10}
    attached = {
        **volume,
        "state": "in-use",
        "attachment": {"instance": instance()["id"], "instance_name": "web-1", "device": "vdb"},
    }
    api.on("GET", "instances/", page([instance()]))
    api.on("GET", "volumes/", page([volume]))
    api.on("POST", "volumes/", {**volume, "state": "creating"})
    api.on("POST", f"volumes/{volume['id']}/attach/", {**volume, "state": "attaching"})
    api.on("POST", f"volumes/{volume['id']}/extend/", {**attached, "state": "extending"})
    api.on("POST", f"volumes/{volume['id']}/detach/", {**attached, "state": "detaching"})
    api.on("GET", f"volumes/{volume['id']}/", [volume, attached])

    assert hangar("volumes", "create", "data").exit_code == USAGE  # neither a size nor a snapshot
    created = hangar("volumes", "create", "data", "--size", "10", "--label", "env=prod", "--wait")
    assert created.exit_code == 0, created.stderr
    assert "volume data: available" in created.stderr
    result = hangar("volumes", "attach", "data", "web-1", "--wait")
    assert result.exit_code == 0, result.stderr
    assert "web-1 (vdb)" in result.stdout
    assert hangar("volumes", "extend", "data", "--size", "20").exit_code == 0
    assert hangar("volumes", "detach", "data").exit_code == 0
    assert api.sent("POST", "volumes/") == [{"name": "data", "size_gib": 10, "labels": {"env": "prod"}}]
    assert api.sent("POST", f"volumes/{volume['id']}/attach/") == [{"instance": instance()["id"]}]
    assert api.sent("POST", f"volumes/{volume['id']}/extend/") == [{"size_gib": 20}]
    assert api.sent("POST", f"volumes/{volume['id']}/detach/") == [{}]

    snapshot = {
        "id": "aaaaaaaa-9999-4999-8999-999999999999",
        "name": "nightly",
        "state": "available",
        "size_gib": 10,
        "source_name": "data",
    }
    api.on("POST", "snapshots/", {**snapshot, "state": "creating"})
    api.on("GET", "snapshots/", page([snapshot]))
    assert hangar("snapshots", "create", "nightly", "--volume", "data").exit_code == 0
    assert api.sent("POST", "snapshots/") == [{"name": "nightly", "volume": volume["id"]}]
    assert "data" in hangar("snapshots", "list").stdout
    assert hangar("volumes", "create", "copy", "--snapshot", "nightly").exit_code == 0
    assert api.sent("POST", "volumes/")[-1] == {"name": "copy", "snapshot": snapshot["id"]}
