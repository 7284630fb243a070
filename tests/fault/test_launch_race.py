"""50 concurrent launches through the API, racing a quota of 10 and a host with room for 5: exactly as many run as
fit, and every other request is refused with the reason that applies, before anything is charged."""

import threading
from collections import Counter

import pytest

pytestmark = [pytest.mark.fault, pytest.mark.slow]


def race(fault, tenant, prefix: str, count: int = 50) -> list:
    """`count` launches released at the same moment, each on its own connection; returns the responses."""
    barrier = threading.Barrier(count, timeout=30)
    responses = [None] * count

    def launch(n: int) -> None:
        barrier.wait()
        responses[n] = fault.launch(tenant, f"{prefix}-{n}", timeout=30)

    threads = [threading.Thread(target=launch, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


def outcomes(responses) -> Counter:
    return Counter(
        "accepted" if response.status_code == 202 else f"{response.status_code} {response.json()['error']['code']}"
        for response in responses
    )


def test_fifty_launches_race_a_quota_of_ten_and_a_host_with_room_for_five(running_stack):
    fault = running_stack
    tenant = fault.new_tenant(instances_quota=10)
    host = fault.only_host(vcpus=5)  # one-vCPU machines, no overcommit

    first = race(fault, tenant, "first")
    assert outcomes(first) == {"accepted": 5, "422 no_capacity": 45}

    # Room for many more: now the quota is what stops them.
    fault.sql("UPDATE compute_host SET vcpus = 100 WHERE id = %s", [host])
    second = race(fault, tenant, "second")
    assert outcomes(second) == {"accepted": 5, "422 quota_exceeded": 45}

    accepted = [response.json()["id"] for response in first + second if response.status_code == 202]
    fault.wait_for_states(dict.fromkeys(accepted, "running"), timeout=60)
    assert fault.sql("SELECT count(*) FROM compute_instance WHERE tenant_id = %s", [tenant.id]) == [(10,)]
    assert fault.sql("SELECT count(*) FROM compute_simulateddomain WHERE host_id = %s", [host]) == [(10,)]
    # Refused launches are charged nothing: one segment per machine that runs, no more.
    assert fault.sql("SELECT count(*) FROM billing_segment WHERE tenant_id = %s", [tenant.id]) == [(10,)]
