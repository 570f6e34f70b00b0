"""deploy/kubernetes/audit-policy.yaml against the audit.k8s.io/v1 Policy types and the API
server's validation of them (k8s.io/apiserver pkg/apis/audit/v1 types and
pkg/apis/audit/validation), then evaluated first-match as the API server's policy checker does:
secrets and service-account tokens are never logged above Metadata."""

from __future__ import annotations

import re
from typing import Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from support.prometheus_tools import REPO

POLICY = REPO / "deploy" / "kubernetes" / "audit-policy.yaml"
Level = Literal["None", "Metadata", "Request", "RequestResponse"]
Stage = Literal["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"]
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ORDER = ["None", "Metadata", "Request", "RequestResponse"]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


class _V1(BaseModel):
    # unknown fields are an error, as the API server's strict decoding of the policy file
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GroupResources(_V1):
    group: str = ""
    resources: list[str] = []
    resource_names: list[str] = Field(default=[], alias="resourceNames")

    @model_validator(mode="after")
    def _valid(self) -> GroupResources:
        if self.group and (len(self.group) > 253 or not _DNS_SUBDOMAIN.match(self.group)):
            raise ValueError(f"group {self.group!r} is not a DNS subdomain")
        if self.resource_names and not self.resources:
            raise ValueError("using resourceNames requires at least one resource")
        return self


class PolicyRule(_V1):
    level: Level
    users: list[str] = []
    user_groups: list[str] = Field(default=[], alias="userGroups")
    verbs: list[str] = []
    resources: list[GroupResources] = []
    namespaces: list[str] = []
    non_resource_urls: list[str] = Field(default=[], alias="nonResourceURLs")
    omit_stages: list[Stage] = Field(default=[], alias="omitStages")
    omit_managed_fields: bool | None = Field(default=None, alias="omitManagedFields")

    @model_validator(mode="after")
    def _valid(self) -> PolicyRule:
        for url in self.non_resource_urls:
            if url != "*" and (not url.startswith("/") or "*" in url[:-1]):
                raise ValueError(f"bad non-resource URL {url!r}")
        if self.non_resource_urls and (self.resources or self.namespaces):
            raise ValueError("rules cannot apply to both regular resources and non-resource URLs")
        return self

    def matches(self, verb: str, group: str, resource: str, subresource: str = "") -> bool:
        """k8s.io/apiserver pkg/audit/policy checker: ruleMatches for a resource request."""
        if (self.verbs and verb not in self.verbs) or self.non_resource_urls:
            return False
        if not self.resources:
            return True
        combined = f"{resource}/{subresource}" if subresource else resource
        for gr in self.resources:
            if gr.group != group:
                continue
            if not gr.resources:
                return True
            for res in gr.resources:
                if res in (combined, "*") \
                        or (subresource and res.startswith("*/") and res[2:] == subresource) \
                        or (res.endswith("/*") and res[:-2] == resource):
                    return True
        return False


class Policy(_V1):
    api_version: Literal["audit.k8s.io/v1"] = Field(alias="apiVersion")
    kind: Literal["Policy"]
    metadata: dict = {}
    rules: list[PolicyRule]
    omit_stages: list[Stage] = Field(default=[], alias="omitStages")
    omit_managed_fields: bool | None = Field(default=None, alias="omitManagedFields")

    def level(self, verb: str, group: str, resource: str, subresource: str = "") -> str:
        for rule in self.rules:  # first match wins
            if rule.matches(verb, group, resource, subresource):
                return rule.level
        return "None"


def _policy() -> Policy:
    return Policy.model_validate(yaml.safe_load(POLICY.read_text("utf-8")))


def test_policy_is_a_valid_audit_v1_policy() -> None:
    policy = _policy()
    assert policy.rules and "RequestReceived" in policy.omit_stages


def test_the_validator_refuses_what_the_api_server_refuses() -> None:
    for bad in ({"level": "Everything"}, {"level": "Metadata", "resource": []},
                {"level": "Metadata", "resources": [{"group": "apps/v1"}]},
                {"level": "Metadata", "resources": [{"resourceNames": ["x"]}]},
                {"level": "Metadata", "nonResourceURLs": ["/a*b"]}):
        with pytest.raises(ValueError):
            PolicyRule.model_validate(bad)


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize("resource", ["secrets", "serviceaccounts/token"])
def test_secrets_and_tokens_are_logged_at_metadata_only(verb: str, resource: str) -> None:
    name, _, sub = resource.partition("/")
    assert _policy().level(verb, "", name, sub) == "Metadata"


def test_no_rule_could_log_a_secret_body() -> None:
    """Whatever comes first: no rule above Metadata matches secrets or token requests."""
    for rule in _policy().rules:
        if _ORDER.index(rule.level) > _ORDER.index("Metadata"):
            for verb in VERBS:
                assert not rule.matches(verb, "", "secrets"), rule
                assert not rule.matches(verb, "", "serviceaccounts", "token"), rule


@pytest.mark.parametrize(("verb", "group", "resource", "level"), [
    ("create", "apps", "replicasets", "Metadata"),  # a Deployment rollout
    ("patch", "apps", "deployments", "Metadata"),
    ("update", "apps", "statefulsets", "Metadata"),
    ("patch", "apps", "daemonsets", "Metadata"),
    ("create", "rbac.authorization.k8s.io", "clusterroles", "Request"),
    ("patch", "rbac.authorization.k8s.io", "roles", "Request"),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", "Metadata"),
    ("get", "", "configmaps", "None"),
    ("get", "", "pods", "None"),
    ("get", "apps", "deployments", "None"),
])
def test_what_the_detections_need_and_nothing_else(verb: str, group: str, resource: str,
                                                   level: str) -> None:
    assert _policy().level(verb, group, resource) == level
