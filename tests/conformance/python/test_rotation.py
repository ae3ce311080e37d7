"""Rotation policies and rotate through the unmodified azure-keyvault-keys KeyClient (durations come back exactly
as sent, as the SDK's own tests expect), and settings through the unmodified KeyVaultSettingsClient."""
import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys import KeyRotationLifetimeAction, KeyRotationPolicy, KeyRotationPolicyAction

from coffer_harness import uniq


def test_rotation_policy_and_rotate_with_the_sdk(server):
    kc = server.key_client()
    name = uniq("rot")
    v1 = kc.create_ec_key(name, curve="P-256", tags={"team": "pay"})
    with pytest.raises(HttpResponseError) as e:
        kc.rotate_key(name)
    assert e.value.status_code == 400, "Managed HSM needs a rotation policy before rotate"
    policy = KeyRotationPolicy(
        expires_in="P90D",
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P2M")])
    stored = kc.update_key_rotation_policy(name, policy)
    assert stored.expires_in == "P90D"
    assert stored.lifetime_actions[0].time_after_create == "P2M"
    assert stored.lifetime_actions[0].time_before_expiry is None
    assert stored.lifetime_actions[0].action == KeyRotationPolicyAction.rotate
    got = kc.get_key_rotation_policy(name)
    assert got.expires_in == "P90D" and got.lifetime_actions[0].time_after_create == "P2M"
    assert got.updated_on is not None
    v2 = kc.rotate_key(name)
    assert v2.properties.version != v1.properties.version
    assert v2.key.x != v1.key.x, "new key material"
    assert v2.properties.tags == {"team": "pay"}
    assert v2.properties.expires_on is not None
    days = (v2.properties.expires_on - v2.properties.created_on).days
    assert 89 <= days <= 90
    assert kc.get_key(name).properties.version == v2.properties.version
    # Notify is a Key Vault feature; a Managed HSM refuses it.
    bad = KeyRotationPolicy(lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.notify, time_before_expiry="P30D")],
                            expires_in="P90D")
    with pytest.raises(HttpResponseError) as e:
        kc.update_key_rotation_policy(name, bad)
    assert e.value.status_code == 400


def test_settings_with_the_sdk(server):
    from azure.keyvault.administration import KeyVaultSettingsClient, KeyVaultSetting
    sc = KeyVaultSettingsClient(server.url, server.credential(), verify_challenge_resource=False,
                                connection_verify=server.ca)
    names = {s.name for s in sc.list_settings()}
    assert "AllowKeyManagementOperationsThroughARM" in names
    s = sc.get_setting("AllowKeyManagementOperationsThroughARM")
    assert s.value in ("true", "false") or s.value in (True, False)
    updated = sc.update_setting(KeyVaultSetting(name="AllowKeyManagementOperationsThroughARM", value="true"))
    assert str(updated.value).lower() == "true"
