def test_upsert_merges_phone_formats(client, write_headers):
    first = client.post(
        "/v1/customers",
        json={"identifiers": [{"type": "phone", "value": "8 (916) 123-45-67"}], "traits": {"name": "Анна"}},
        headers=write_headers,
    )
    assert first.status_code == 200, first.text
    second = client.post(
        "/v1/customers", json={"identifiers": [{"type": "phone", "value": "+79161234567"}]}, headers=write_headers
    )
    assert second.json()["customer"]["id"] == first.json()["customer"]["id"]
    assert second.json()["created"] is False
