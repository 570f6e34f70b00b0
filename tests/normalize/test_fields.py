"""The shared field rules (timestamps, addresses, secret names, source detection) case by case:
the parts the VRL and Lua implementations must reproduce exactly."""

from __future__ import annotations

import pytest

from secretsight.normalize import DeadLetter, detect_source
from secretsight.normalize.cloudtrail import secret_name
from secretsight.normalize.fields import ip_literal, split_address, timestamp


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2021-06-29T17:26:11.409840527Z", "2021-06-29T17:26:11.409840527Z"),
        ("2021-06-29T17:26:11Z", "2021-06-29T17:26:11Z"),
        ("2021-06-29T17:26:11.5Z", "2021-06-29T17:26:11.5Z"),
        ("2020-02-29T00:00:00Z", "2020-02-29T00:00:00Z"),
        ("2000-02-29T23:59:59Z", "2000-02-29T23:59:59Z"),
        ("2021-06-29T17:26:11+00:00", "2021-06-29T17:26:11Z"),
        ("2021-06-29T17:26:11.25+05:30", "2021-06-29T11:56:11.25Z"),
        ("2020-12-31T22:30:00-02:00", "2021-01-01T00:30:00Z"),
        ("2024-10-17 21:48:45.000000000", "2024-10-17T21:48:45.000000000Z"),
        ("2024-01-01 00:00:00.000", "2024-01-01T00:00:00.000Z"),
        ("2024-01-01 00:00:00", "2024-01-01T00:00:00Z"),
        ("2024-01-01 00:00:00Z", "2024-01-01T00:00:00Z"),
    ],
)
def test_timestamp_normalized(raw: str, expected: str) -> None:
    assert timestamp(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "missing_timestamp"),
        ("", "missing_timestamp"),
        (1778320800, "invalid_timestamp"),
        ("yesterday", "invalid_timestamp"),
        ("2021-02-29T00:00:00Z", "invalid_timestamp"),
        ("1900-02-29T00:00:00Z", "invalid_timestamp"),
        ("2021-13-01T00:00:00Z", "invalid_timestamp"),
        ("2021-06-31T00:00:00Z", "invalid_timestamp"),
        ("2021-06-29T24:00:00Z", "invalid_timestamp"),
        ("2021-06-29T23:60:00Z", "invalid_timestamp"),
        ("2021-06-29T23:59:60Z", "invalid_timestamp"),
        ("2021-06-29T17:26:11", "invalid_timestamp"),
        ("2021-06-29t17:26:11Z", "invalid_timestamp"),
        ("2021-06-29T17:26:11.Z", "invalid_timestamp"),
        ("2021-06-29T17:26:11.1234567890Z", "invalid_timestamp"),
        ("2021-06-29T17:26:11+2400", "invalid_timestamp"),
        ("2021-06-29T17:26:11+24:00", "invalid_timestamp"),
        ("0000-01-01T00:00:00Z", "invalid_timestamp"),
        ("2021-06-29T17:26:11.\u0663Z", "invalid_timestamp"),
        (" 2021-06-29T17:26:11Z", "invalid_timestamp"),
    ],
)
def test_timestamp_rejected(raw: object, code: str) -> None:
    with pytest.raises(DeadLetter) as info:
        timestamp(raw)
    assert info.value.code == code


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.1.47", ("10.0.1.47", None)),
        ("192.168.0.10:36776", ("192.168.0.10", 36776)),
        ("[2001:db8::10]:36778", ("2001:db8::10", 36778)),
        ("[2001:db8::10]", ("2001:db8::10", None)),
        ("2001:db8::5", ("2001:db8::5", None)),
        ("::1", ("::1", None)),
        ("::ffff:10.0.0.1", ("::ffff:10.0.0.1", None)),
        ("vault-client.internal", (None, None)),
        ("vault-client.internal:8200", (None, None)),
        ("172.01.01.001", (None, None)),
        ("256.1.1.1", (None, None)),
        ("10.0.0.1:70000", (None, None)),
        ("10.0.0.1:", (None, None)),
        ("10.0.0.1:abc", (None, None)),
        ("[10.0.0.1]:80", (None, None)),
        ("fe80::1%eth0", (None, None)),
        ("[2001:db8::10]x", (None, None)),
    ],
)
def test_split_address(address: str, expected: tuple[str | None, int | None]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.10", "203.0.113.10"),
        ("secretsmanager.amazonaws.com", None),
        ("AWS Internal", None),
        ("2001:DB8::1", "2001:DB8::1"),
        ("1.2.3", None),
    ],
)
def test_ip_literal(value: str, expected: str | None) -> None:
    assert ip_literal(value) == expected


@pytest.mark.parametrize(
    ("secret_id", "expected"),
    [
        ("prod/db/password", "prod/db/password"),
        (
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password-a1B2c3",
            "prod/db/password",
        ),
        (
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db/password",
            "prod/db/password",
        ),
        ("arn:aws-cn:secretsmanager:cn-north-1:1:secret:x-abcdef", "x"),
        (
            "arn:aws:secretsmanager:us-east-1:1:secret:DdApiKeySecret-aUFEgO4SmSGN-xqgqXR",
            "DdApiKeySecret-aUFEgO4SmSGN",
        ),
        ("arn:aws:kms:us-east-1:1:key/abc", "arn:aws:kms:us-east-1:1:key/abc"),
        ("name-with-suffix-abcdef", "name-with-suffix-abcdef"),
    ],
)
def test_secret_name(secret_id: str, expected: str) -> None:
    assert secret_name(secret_id) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"type": "response", "request": {}}, "vault"),
        ({"type": "kmip-request"}, "vault"),
        ({"Records": []}, "cloudtrail"),
        ({"Events": []}, "cloudtrail"),
        ({"detail-type": "x", "detail": {}}, "cloudtrail"),
        ({"eventName": "GetSecretValue"}, "cloudtrail"),
        ({"protoPayload": {}}, "kubernetes"),
        ({"properties": {"log": "{}"}}, "kubernetes"),
        ({"kind": "Event"}, "kubernetes"),
        ({"auditID": "x"}, "kubernetes"),
        ({"apiVersion": "audit.k8s.io/v1beta1"}, "kubernetes"),
        ({"type": ["response"]}, None),
        ({"properties": "log"}, None),
        ({"message": "x"}, None),
    ],
)
def test_detect_source(obj: dict, expected: str | None) -> None:
    assert detect_source(obj) == expected
